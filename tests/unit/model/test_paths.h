#pragma once
// Where model and compression tests find their inputs (BundledModelPath, BundledModelPresent,
// TestDataPath): now shared by every test folder in tests/unit/test_files.h.

#include "tests/unit/test_files.h"
