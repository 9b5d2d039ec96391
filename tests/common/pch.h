// Precompiled for every test executable (tests/CMakeLists.txt): the headers most test files
// include. Parsing them took ~3 s of each test's compile, twice per CI run (Release and the
// sanitizer tree).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "wick/wick.h"
