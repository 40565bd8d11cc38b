# control-protocol codec (src/common/control-codec.[ch])
