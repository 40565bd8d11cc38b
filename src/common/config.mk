# configuration (src/common/config.[ch])
