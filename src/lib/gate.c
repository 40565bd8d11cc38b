#include "bluegreen.h"
