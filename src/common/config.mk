# configuration (src/common/config.[ch]): bluegreend.conf and jobs.d/*.job
libbgcommon_la_SOURCES += src/common/config.c src/common/config.h
