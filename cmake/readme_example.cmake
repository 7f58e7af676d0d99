# Extract the C example from README.md (the block after the marker comment
# "<!-- example: readme.c -->"), compile it against the built library, run it
# and compare what it prints with the output block the README shows after it.
file(READ "${SRC}/README.md" readme)
string(FIND "${readme}" "<!-- example: readme.c -->" at)
if(at EQUAL -1)
  message(FATAL_ERROR "README.md has no example marker")
endif()
string(SUBSTRING "${readme}" ${at} -1 rest)
string(FIND "${rest}" "```c\n" open)
string(SUBSTRING "${rest}" ${open} -1 rest)
string(LENGTH "```c\n" skip)
string(SUBSTRING "${rest}" ${skip} -1 rest)
string(FIND "${rest}" "```" close)
string(SUBSTRING "${rest}" 0 ${close} code)
# The next plain ``` block is the output the README promises.
math(EXPR after "${close} + 3")
string(SUBSTRING "${rest}" ${after} -1 rest)
string(FIND "${rest}" "```\n" open)
math(EXPR open "${open} + 4")
string(SUBSTRING "${rest}" ${open} -1 rest)
string(FIND "${rest}" "```" close)
string(SUBSTRING "${rest}" 0 ${close} expected)
file(WRITE "${BIN}/readme_example.c" "${code}")
separate_arguments(flags UNIX_COMMAND "${FLAGS}")
execute_process(
  COMMAND ${CC} -std=c11 -Wall -Wextra -Werror ${flags} -I${SRC}/include
          ${BIN}/readme_example.c ${BIN}/libsmallworld.a -lpthread -lm
          -o ${BIN}/readme_example
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the README example does not compile")
endif()
execute_process(COMMAND ${BIN}/readme_example RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message("${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the README example exited with ${rc}")
endif()
if(NOT out STREQUAL expected)
  message(FATAL_ERROR "the README example printed\n${out}\nbut the README says\n${expected}")
endif()
