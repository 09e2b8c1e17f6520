# Generates the certificate-bearing seeds for one fuzz target, then replays them with the committed
# corpus. Run by ctest as: cmake -DGEN= -DOUT= -DKIND= -DREPLAY= -DCORPUS= -P replay.cmake
file(REMOVE_RECURSE ${OUT})
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${GEN} --for ${KIND} ${OUT} RESULT_VARIABLE gen_rc)
if(NOT gen_rc EQUAL 0)
  message(FATAL_ERROR "p2psip-fuzz-seeds failed (${gen_rc})")
endif()
execute_process(COMMAND ${REPLAY} ${OUT} ${CORPUS} RESULT_VARIABLE replay_rc)
if(NOT replay_rc EQUAL 0)
  message(FATAL_ERROR "replay failed (${replay_rc})")
endif()
