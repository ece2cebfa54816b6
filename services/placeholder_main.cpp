// The services whose issues have not landed yet are built from this file, so every binary of
// the design exists, answers --help, and says plainly that it does nothing yet. It consumes
// nothing: a placeholder that committed offsets would lose tasks.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::printf("%s: not implemented yet (see issue #%d); `agentline up` does not start it.\n",
                AGENTLINE_SERVICE, AGENTLINE_ISSUE);
    return 0;
  }
  std::fprintf(stderr, "%s: not implemented yet (see issue #%d); refusing to run.\n", AGENTLINE_SERVICE,
               AGENTLINE_ISSUE);
  return 64;
}
