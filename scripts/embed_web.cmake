# embed_web.cmake - writes the web app's files (web/) into one C file, so
# that `memgpt serve` carries its page with it (server/static.c).
#
#   cmake -DSRC=web -DOUT=web_assets.c -P scripts/embed_web.cmake
#
# Every file under SRC becomes {"/path", bytes, size}, in path order (its
# content type comes from its extension, in static.c); files whose names
# start with "." or end in "~" are skipped.
#
# The ES modules (js/) are not embedded one by one: a browser that loads ten
# modules pays for ten fetches and ten compiles before the first screen.
# They are joined into one script, /app.js, that index.html loads instead
# (its modulepreload links go). Each module becomes a function run once, in
# the order a browser would run the modules (each after what it imports);
# its exports become the fields of the object it returns, and each import a
# const taken from one. Only the forms the app uses are understood: named
# and namespace imports of './name.js', and `export` before a function,
# class, const or let at the start of a line; anything else (export default,
# re-exports, a cycle) stops the build. An exported let is copied once, not
# a live binding. `--ui-dir` serves web/ as it is, modules and all.
#
# The files' version, srv_assets_version, is a hash of them all. In
# index.html, every src="/..." and href="/..." gets it as a prefix,
# "/v/<version>/...", so that browsers may keep those files for good: a
# new build has new addresses (static.c strips the prefix).
cmake_minimum_required(VERSION 3.20)

set(ident "[A-Za-z_$][A-Za-z0-9_$]*")

# Appends module REL (a path under SRC), after the modules it imports, to
# the global property bundle_text.
function(bundle_module rel)
  get_property(done GLOBAL PROPERTY bundle_done)
  if(rel IN_LIST done)
    return()
  endif()
  get_property(open GLOBAL PROPERTY bundle_open)
  if(rel IN_LIST open)
    message(FATAL_ERROR "web/${rel}: modules that import each other in a circle cannot be joined")
  endif()
  set_property(GLOBAL APPEND PROPERTY bundle_open "${rel}")
  file(READ "${SRC}/${rel}" text)
  # Every line, the first included, now starts after a newline.
  string(PREPEND text "\n")
  get_filename_component(dir "${rel}" DIRECTORY)

  string(REGEX MATCHALL "\nimport [^\n;]+ from '\\./[A-Za-z0-9_-]+\\.js'" imports "${text}")
  foreach(line IN LISTS imports)
    string(REGEX MATCH "^\nimport ([^\n;]+) from '\\./([A-Za-z0-9_-]+)\\.js'$" line "${line}")
    set(what "${CMAKE_MATCH_1}")
    set(name "${CMAKE_MATCH_2}")
    string(REGEX REPLACE "^/" "" imported "${dir}/${name}.js")
    bundle_module("${imported}")
    string(MAKE_C_IDENTIFIER "module_${name}" object)
    if(what MATCHES "^\\* as (${ident})$")
      set(binding "const ${CMAKE_MATCH_1} = ${object}")
    elseif(what MATCHES "^{[^}]*}$")
      string(REGEX REPLACE "[ \t\n]+as[ \t\n]+" ": " what "${what}")
      set(binding "const ${what} = ${object}")
    else()
      message(FATAL_ERROR "web/${rel}: only named and namespace imports can be joined: ${line}")
    endif()
    string(REPLACE "${line}" "\n${binding}" text "${text}")
  endforeach()

  string(REGEX MATCHALL "\nexport (async )?(function\\*?|class|const|let) ${ident}" exports "${text}")
  set(names "")
  foreach(line IN LISTS exports)
    string(REGEX REPLACE ".* " "" export "${line}")
    list(APPEND names "${export}")
  endforeach()
  string(REGEX REPLACE "\nexport ((async )?(function|class|const|let))" "\n\\1" text "${text}")
  if(text MATCHES "\n[ \t]*(import|export)[ \t{*]")
    message(FATAL_ERROR "web/${rel}: an import or export the bundler does not know: ${CMAKE_MATCH_0}")
  endif()
  list(JOIN names ", " names)

  get_filename_component(name "${rel}" NAME_WE)
  string(MAKE_C_IDENTIFIER "module_${name}" object)
  set_property(GLOBAL APPEND_STRING PROPERTY bundle_text
               "// ${rel}\nconst ${object} = (() => {${text}\nreturn { ${names} };\n})();\n\n")
  set_property(GLOBAL APPEND PROPERTY bundle_done "${rel}")
endfunction()

# index.html's one module script: joined, then named /app.js.
file(READ "${SRC}/index.html" page)
if(NOT page MATCHES "<script type=\"module\" src=\"/([^\"]+\\.js)\"></script>")
  message(FATAL_ERROR "web/index.html: no <script type=\"module\" src=\"/...\"> to join")
endif()
set(entry "${CMAKE_MATCH_1}")
set_property(GLOBAL PROPERTY bundle_text "")
bundle_module("${entry}")
get_property(bundle GLOBAL PROPERTY bundle_text)
get_property(joined GLOBAL PROPERTY bundle_done)
string(REPLACE "src=\"/${entry}\"" "src=\"/app.js\"" page "${page}")
string(REGEX REPLACE "<link rel=\"modulepreload\"[^>]*>\n" "" page "${page}")
string(REGEX REPLACE "<!--[^>]*-->\n" "" page "${page}")
if(page MATCHES "modulepreload" OR NOT page MATCHES "src=\"/app.js\"")
  message(FATAL_ERROR "web/index.html: its module script and preloads could not be replaced by /app.js")
endif()

# The version covers this script too: it decides what app.js holds.
file(GLOB_RECURSE found RELATIVE "${SRC}" "${SRC}/*")
list(SORT found)
set(files "")
file(SHA256 "${CMAKE_CURRENT_LIST_FILE}" digest)
set(digests "embed_web.cmake ${digest}\n")
foreach(rel IN LISTS found)
  get_filename_component(name "${rel}" NAME)
  if(NOT name MATCHES "^\\." AND NOT name MATCHES "~$")
    file(SHA256 "${SRC}/${rel}" digest)
    string(APPEND digests "${rel} ${digest}\n")
    if(NOT rel IN_LIST joined AND NOT rel STREQUAL "index.html")
      list(APPEND files "${rel}")
    endif()
  endif()
endforeach()
if("app.js" IN_LIST files)
  message(FATAL_ERROR "web/app.js: the name of the joined modules is taken")
endif()
string(SHA256 version "${digests}")
string(SUBSTRING "${version}" 0 16 version)
string(REGEX REPLACE "(src|href)=\"/([^\"/])" "\\1=\"/v/${version}/\\2" page "${page}")

set(out "/* Generated by scripts/embed_web.cmake from web/: do not edit. */\n")
string(APPEND out "#include \"server/static.h\"\n\n")
string(APPEND out "const char srv_assets_version[] = \"${version}\";\n\n")
string(REPEAT "0x[0-9a-f][0-9a-f]," 24 line_of_bytes)
set(table "")
set(n 0)
# Appends one file, named PATH, of the bytes in HEX, to the table.
macro(embed path hex)
  string(LENGTH "${hex}" hexlen)
  math(EXPR size "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "(${line_of_bytes})" "\\1\n    " bytes "${bytes}")
  string(APPEND out "static const unsigned char asset_${n}[] = {\n    ${bytes}0};\n")
  string(APPEND table "    {\"/${path}\", asset_${n}, ${size}},\n")
  math(EXPR n "${n} + 1")
endmacro()
string(HEX "${page}" hex)
embed("index.html" "${hex}")
string(HEX "${bundle}" hex)
embed("app.js" "${hex}")
foreach(rel IN LISTS files)
  file(READ "${SRC}/${rel}" hex HEX)
  embed("${rel}" "${hex}")
endforeach()
string(APPEND out "\nconst srv_asset srv_assets[] = {\n${table}    {0, 0, 0}};\n")
file(WRITE "${OUT}.tmp" "${out}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
