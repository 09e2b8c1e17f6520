# cmake -P: installs the SDK components of BUILD_DIR (sdk: the library; sdk_dev: the rest) into
# WORK_DIR/prefix, checks what got installed, then builds and runs two consumers of the installed
# SDK: a CMake project using find_package(p2psip CONFIG) and C programs built with
# `cc $(pkg-config --cflags --libs ...)`.
foreach(v BUILD_DIR WORK_DIR CONSUMER_DIR SAMPLES_DIR GENERATOR CXX CC)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "${v} is not set")
  endif()
endforeach()

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "ok: ${what}")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

foreach(component sdk sdk_dev)
  run("cmake --install --component ${component}" ${CMAKE_COMMAND} --install ${BUILD_DIR}
      --prefix ${prefix} --component ${component})
endforeach()

# Exactly the SDK's public headers, and no static library.
file(GLOB_RECURSE headers RELATIVE ${prefix}/include ${prefix}/include/*)
list(SORT headers)
set(expected p2psip/client/client.hpp p2psip/client/errors.hpp p2psip/client/p2psip_client.h)
if(NOT headers STREQUAL expected)
  message(FATAL_ERROR "installed headers: ${headers}\nexpected: ${expected}")
endif()
file(GLOB_RECURSE archives ${prefix}/*.a)
if(archives)
  message(FATAL_ERROR "static libraries installed: ${archives}")
endif()
file(GLOB_RECURSE config ${prefix}/*/p2psip-config.cmake)
file(GLOB_RECURSE pc ${prefix}/*/p2psip-client.pc)
file(GLOB_RECURSE targets ${prefix}/*/p2psip-targets.cmake)
if(NOT config OR NOT pc OR NOT targets)
  message(FATAL_ERROR "missing package files: config='${config}' pc='${pc}' targets='${targets}'")
endif()
# The exported target must not need the static libraries linked into the .so.
file(READ ${targets} targets_text)
foreach(internal overlay_driver p2psip_config p2psip_protocol p2psip_crypto BOTAN asio warnings)
  string(FIND "${targets_text}" "${internal}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "p2psip-targets.cmake mentions ${internal}:\n${targets_text}")
  endif()
endforeach()
message(STATUS "ok: installed files")

set(sanitize_flags "")
if(SANITIZE)
  set(sanitize_flags -fsanitize=address,undefined)
endif()
list(JOIN sanitize_flags " " sanitize_string)

# 1. find_package(p2psip CONFIG REQUIRED) -> p2psip::client.
run("configure the CMake consumer" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/cmake-consumer
    -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_C_COMPILER=${CC}
    -DCMAKE_PREFIX_PATH=${prefix} -DSAMPLES_DIR=${SAMPLES_DIR}
    "-DCMAKE_CXX_FLAGS=${sanitize_string}" "-DCMAKE_C_FLAGS=${sanitize_string}"
    "-DCMAKE_EXE_LINKER_FLAGS=${sanitize_string}")
run("build the CMake consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/cmake-consumer)
run("run the C++ consumer" ${WORK_DIR}/cmake-consumer/consumer)
run("run the C consumer (CMake)" ${WORK_DIR}/cmake-consumer/consumer_c)
# The samples built outside the tree: started without arguments they print their usage (2).
foreach(sample put_get typed_dictionary sip_chat c_api)
  execute_process(COMMAND ${WORK_DIR}/cmake-consumer/${sample} RESULT_VARIABLE rc
                  ERROR_VARIABLE err OUTPUT_QUIET)
  if(NOT rc EQUAL 2 OR NOT err MATCHES "usage:")
    message(FATAL_ERROR "sample ${sample} built against the installed SDK: ${rc} ${err}")
  endif()
endforeach()
message(STATUS "ok: samples built with find_package")

# 2. pkg-config, as a C program's Makefile would: cc x.c $(pkg-config --cflags --libs ...).
get_filename_component(pc_dir ${pc} DIRECTORY)
set(ENV{PKG_CONFIG_PATH} ${pc_dir})
run("pkg-config" pkg-config --cflags --libs p2psip-client)
separate_arguments(pc_flags UNIX_COMMAND "${last_output}")
get_filename_component(libdir ${targets} DIRECTORY)
get_filename_component(libdir ${libdir} DIRECTORY)
get_filename_component(libdir ${libdir} DIRECTORY)
foreach(program consumer:${CONSUMER_DIR}/consumer.c c_api:${SAMPLES_DIR}/c_api.c)
  string(REPLACE ":" ";" parts ${program})
  list(GET parts 0 name)
  list(GET parts 1 source)
  run("cc ${name}.c with pkg-config" ${CC} -std=c99 -Wall -Wextra -Wpedantic -Werror
      ${sanitize_flags} ${source} ${pc_flags} -pthread -o ${WORK_DIR}/pc-${name})
endforeach()
set(ENV{LD_LIBRARY_PATH} ${libdir})
run("run the C consumer (pkg-config)" ${WORK_DIR}/pc-consumer)
execute_process(COMMAND ${WORK_DIR}/pc-c_api RESULT_VARIABLE rc ERROR_VARIABLE err OUTPUT_QUIET)
if(NOT rc EQUAL 2 OR NOT err MATCHES "usage:")
  message(FATAL_ERROR "c_api built with pkg-config: ${rc} ${err}")
endif()
message(STATUS "ok: the installed SDK works from CMake and from pkg-config")
