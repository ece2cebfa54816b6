# agentline_embed(<target> NAMESPACE <ns> FILES <file>...): compiles FILES into <target> as
# <ns>::embedded_file(path) (cmake/embed_resources.cmake), path relative to the source tree. A
# library embeds what it reads, so a binary carries only its own files.
function(agentline_embed target)
  cmake_parse_arguments(ARG "" "NAMESPACE" "FILES" ${ARGN})
  set(files)
  foreach(f IN LISTS ARG_FILES)
    list(APPEND files ${PROJECT_SOURCE_DIR}/${f})
  endforeach()
  string(REPLACE ";" "," files_arg "${files}")
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${target}_embedded.cpp)
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${out} -DROOT=${PROJECT_SOURCE_DIR} -DNAMESPACE=${ARG_NAMESPACE}
            "-DFILES=${files_arg}" -P ${PROJECT_SOURCE_DIR}/cmake/embed_resources.cmake
    DEPENDS ${files} ${PROJECT_SOURCE_DIR}/cmake/embed_resources.cmake
    COMMENT "Embedding the files of ${target}"
    VERBATIM)
  target_sources(${target} PRIVATE ${out})
endfunction()
