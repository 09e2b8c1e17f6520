# ctest runs a doctest case by its name, passed through a CMake list: a ';' in the name splits it,
# and the pieces match no case, so the test "passes" having run nothing. Refuse such names.
file(GLOB_RECURSE sources "${TESTS_DIR}/*.cpp" "${TESTS_DIR}/*.hpp")
set(bad "")
foreach(source IN LISTS sources)
  file(READ "${source}" text)
  # Escape the list separator first, or string(REGEX) would split the text at every ';'.
  string(REPLACE ";" "<semicolon>" text "${text}")
  string(REGEX MATCHALL "TEST_CASE\\([ \t\r\n]*\"[^\"]*<semicolon>[^\"]*\"" hits "${text}")
  foreach(hit IN LISTS hits)
    string(REPLACE "<semicolon>" ";" hit "${hit}")
    string(APPEND bad "\n  ${source}: ${hit}")
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "test case names with ';' (ctest would run nothing for them):${bad}")
endif()
message(STATUS "test case names checked")
