#pragma once
// Umbrella header: the whole public API of wick.
#include "wick/device.h"
#include "wick/dtype.h"
#include "wick/error.h"
#include "wick/memory.h"
#include "wick/ops.h"
#include "wick/random.h"
#include "wick/runtime.h"
#include "wick/shape.h"
#include "wick/tensor.h"
#include "wick/tokenizer.h"
