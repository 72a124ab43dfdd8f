// Turns a runtime flag into a template argument, so that each kernel variant
// is compiled without the branch (after flash-attention's BOOL_SWITCH):
//   BOOL_SWITCH(save, kSave, [&] { launch<kSave>(...); });
#pragma once

#define BOOL_SWITCH(COND, CONST_NAME, ...)      \
  [&] {                                         \
    if (COND) {                                 \
      constexpr static bool CONST_NAME = true;  \
      return __VA_ARGS__();                     \
    } else {                                    \
      constexpr static bool CONST_NAME = false; \
      return __VA_ARGS__();                     \
    }                                           \
  }()
