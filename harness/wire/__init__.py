"""The wire: capture packets (`capture`) and read any capture (`analysis.analyze_pcap`).

`pcap` reads and writes files, `tcp_streams` reassembles TCP, `sip_ladder` and
`http_requests` find the messages, `sdp` + `rtp_streams` + `rtp_stats` the RTP streams and
their tshark-equal statistics, `audio` what the streams carry, `switch` whether a call
switched prompts after an update request. `testing` builds synthetic captures for tests.
"""
