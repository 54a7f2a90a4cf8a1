"""sip-harness's public import name for code that runs where the harness does not: inside
your real Lambda (`sip_harness.trace`). The folder `harness/trace_layer` is a Lambda layer as
it stands (`python/sip_harness/...`); `sip-harness fidelity layer` zips it."""
