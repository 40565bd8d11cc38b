# control-protocol codec (src/common/control-codec.[ch])
libbgcommon_la_SOURCES += \
	src/common/control-codec.c src/common/control-codec.h
