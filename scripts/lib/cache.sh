# Sourced by the scripts that fetch or build something once per machine (Helm, the Kafka jars,
# schemathesis' virtualenv, later librdkafka, llama.cpp, a base image).
# Everything lives under one machine-wide folder outside the checkout, one subfolder per
# <name>-<version>, so a fresh clone on the same machine (CI's) reuses it. `make clean` never
# touches it; `make distclean` deletes it. AGENTLINE_CACHE_DIR overrides the location.
agentline_cache=${AGENTLINE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/agentline}

