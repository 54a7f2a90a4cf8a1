"""The wire: capture packets (`capture`) and read any capture (`analysis.analyze_pcap`).

`pcap_records` walks a pcap/pcapng file's records, `datagrams` decodes their UDP datagrams
into numpy columns (with `packets.decode_frame` for the uncommon frames, `fragments` for IP
reassembly, `icmp` for ICMP errors), `tcp_streams` reassembles TCP, `sip_ladder` and
`http_requests` find the messages, `sdp` + `rtp_streams` + `rtp_stats` the RTP streams and
their tshark-equal statistics, `rtcp_reports` what RTCP says about them, `calls` and
`quality` the calls and each stream's E-model MOS, `audio` what the streams carry, `words`
the speech recognised in them, `switch` whether a call switched prompts after an update
request, `report_text` the text report of a capture. `pcap` reads and writes captures as packet objects, and `testing`
builds synthetic captures for tests.
"""
