# systemd test hosts and the C test helper library (tools/bg-host, tests/lib/)
