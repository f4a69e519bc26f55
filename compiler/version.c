/* version.c — the compiler layer's version string. */
#include "qj_compiler.h"

const char *qj_version(void);
const char *qj_version(void) { return "0.1.0"; }
