/* qj_compiler.h — umbrella header of the compiler layer (loaders, tokenizers,
 * plans, quantizer, package writer). Internal headers live beside it. */
#ifndef QJ_COMPILER_H
#define QJ_COMPILER_H

#include "qj_model.h"
#include "qj_status.h"
#include "qj_tensor.h"

#endif
