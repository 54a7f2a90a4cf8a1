"""Running and verifying: `setup` turns a profile (or a handler) into the stub's settings, the
run's RTP ports and its capture; `profile` runs a profile's steps (`ProfileRun`); `verify`
judges the finished run, one function per expectation; `load` places many calls on the same
pieces (`sip-harness load`)."""
