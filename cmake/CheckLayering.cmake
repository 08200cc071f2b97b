# The modules' layering, enforced at build time (run by the quarry_layering target):
#   cmake -DSOURCE_DIR=... -DSTAMP=... -P cmake/CheckLayering.cmake
# Each module may include the headers of the modules listed for it and the public headers (quarry/*.h);
# anything else fails the build, naming the file and the include. Dependencies point one way:
#   tools/quarry (CLI), python/src -> public headers -> engine -> {rerank, eval} -> index -> {storage, model} -> common
# The CLI and the Python module are shells over the public headers; like llama.cpp's tools over their
# "common" helpers, they may also use common/ (JSON printing, the progress line, string helpers).
# Public headers include only public headers. Tests and benchmark programs may include anything.
cmake_minimum_required(VERSION 3.25)  # IN_LIST in if()
set(allowed_include "")
set(allowed_common "common")
set(allowed_model "common;model")
set(allowed_storage "common;storage")
set(allowed_eval "common;eval")
set(allowed_index "common;model;storage;index")
set(allowed_rerank "common;model;index;rerank")
set(allowed_engine "common;model;storage;index;eval;rerank;engine")
set(allowed_cli "common;tools")
set(allowed_python "common")

file(GLOB_RECURSE files RELATIVE "${SOURCE_DIR}"
     "${SOURCE_DIR}/include/quarry/*.h"
     "${SOURCE_DIR}/common/*" "${SOURCE_DIR}/model/*" "${SOURCE_DIR}/storage/*" "${SOURCE_DIR}/eval/*"
     "${SOURCE_DIR}/index/*" "${SOURCE_DIR}/rerank/*" "${SOURCE_DIR}/engine/*"
     "${SOURCE_DIR}/tools/quarry/*" "${SOURCE_DIR}/python/src/*")
set(violations 0)
foreach(file IN LISTS files)
  if(NOT file MATCHES "\\.(h|cc)$")
    continue()
  endif()
  if(file MATCHES "^tools/quarry/")
    set(module cli)
  elseif(file MATCHES "^python/src/")
    set(module python)
  else()
    string(REGEX MATCH "^[a-z]+" module "${file}")
  endif()
  file(STRINGS "${SOURCE_DIR}/${file}" includes REGEX "^#include \"")
  foreach(line IN LISTS includes)
    if(NOT line MATCHES "^#include \"([a-z_]+)/")
      continue()
    endif()
    set(dep "${CMAKE_MATCH_1}")
    if(dep STREQUAL "quarry" OR dep IN_LIST allowed_${module})
      continue()
    endif()
    message(SEND_ERROR "layering: ${file} (${module}) includes ${line}; ${module} may include quarry/*.h "
                       "and: ${allowed_${module}} (cmake/CheckLayering.cmake)")
    math(EXPR violations "${violations} + 1")
  endforeach()
endforeach()
if(violations EQUAL 0)
  file(TOUCH "${STAMP}")
endif()
