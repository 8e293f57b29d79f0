# Turns a file into a C source holding its bytes, for files the gateway serves from memory.
# Usage: cmake -DIN=<file> -DOUT=<file.c> -DNAME=<symbol> -P embed.cmake
# Defines: const char NAME[] (NUL-terminated) and const size_t NAME_len.
file(READ "${IN}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n" bytes "${bytes}")
get_filename_component(name "${IN}" NAME)
file(WRITE "${OUT}" "/* generated from ${name} by cmake/embed.cmake: do not edit */\n#include <stddef.h>\n"
     "const char ${NAME}[] = {\n${bytes}0};\nconst size_t ${NAME}_len = sizeof(${NAME}) - 1;\n")
