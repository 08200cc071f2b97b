// Internal to the eval module: Student's t distribution (ComparePaired is in include/quarry/eval.h).
#pragma once

#include "quarry/eval.h"

namespace quarry::eval {

// Two-sided p-value of Student's t with `df` degrees of freedom.
double StudentTwoSidedP(double t, double df);

}  // namespace quarry::eval
