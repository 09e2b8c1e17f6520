# Warnings are set per target through p2psip_warnings so that third-party code is not affected.
add_library(p2psip_warnings INTERFACE)
target_compile_options(p2psip_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough)
if(P2PSIP_WERROR)
  target_compile_options(p2psip_warnings INTERFACE -Werror)
endif()
add_library(p2psip::warnings ALIAS p2psip_warnings)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 reports maybe-uninitialized inside std::variant/std::optional moves at -O2 and above
  # (false positives, GCC bugs 105562 and 107138); at -O0 it says nothing. Clang builds keep the
  # equivalent checks, and the sanitizer presets catch real uses of uninitialized memory.
  target_compile_options(p2psip_warnings INTERFACE -Wno-maybe-uninitialized)
  # GCC 12 at -O3 also reports -Wrestrict inside std::string's operator+ and insert (GCC bug
  # 105651) and -Wstringop-overread inside std::vector's operator<=> (bug 107852), both fixed
  # in 13, and -Warray-bounds and -Wstringop-overflow inside std::vector's range copy of a few
  # bytes (bug 107852's kin: samples/typed_dictionary.cpp, tests/tshark/reload_checks.cpp); only
  # the release preset optimizes that far.
  target_compile_options(p2psip_warnings INTERFACE
                         $<$<CONFIG:Release>:-Wno-restrict -Wno-stringop-overread
                                             -Wno-array-bounds -Wno-stringop-overflow>)
  # GCC 12 at -O1 with a sanitizer reports -Wmismatched-new-delete where Asio's coroutine frames
  # (awaitable_frame_base) pair their own operator new and sized operator delete: GCC bug 109224,
  # a false positive on C++20 coroutines. Only the sanitizer presets compile that way.
  if(P2PSIP_SANITIZE OR P2PSIP_TSAN)
    target_compile_options(p2psip_warnings INTERFACE -Wno-mismatched-new-delete)
  endif()
endif()
