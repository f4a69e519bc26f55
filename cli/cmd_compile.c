/* cmd_compile.c — qjit compile (placeholder until its owner writes it during this session). */
#include "cli.h"
#include "qj_status.h"

int cmd_compile(int argc, char **argv) {
    (void)argc;
    (void)argv;
    qj_fail(QJ_ERR_UNSUPPORTED, "not built yet");
    return cli_error("compile");
}
