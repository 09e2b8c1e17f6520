# Warnings are set per target through p2psip_warnings so that third-party code is not affected.
add_library(p2psip_warnings INTERFACE)
target_compile_options(p2psip_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
  -Wold-style-cast -Woverloaded-virtual -Wimplicit-fallthrough)
if(P2PSIP_WERROR)
  target_compile_options(p2psip_warnings INTERFACE -Werror)
endif()
add_library(p2psip::warnings ALIAS p2psip_warnings)
