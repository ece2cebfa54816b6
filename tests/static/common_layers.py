#!/usr/bin/env python3
"""The folders of common/ depend on each other one way only (issue #21): no include cycle
between config, net, observability, resilience, kafka, events, cache, storage and service.
Prints the graph; exits 1 naming a cycle if there is one."""
import os
import re
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "common")
include = re.compile(r'#include "agentline/([a-z_]+)/')
graph = {}
for base in ("include/agentline", "src"):
    for folder in sorted(os.listdir(os.path.join(root, base))):
        path = os.path.join(root, base, folder)
        if not os.path.isdir(path):
            continue
        for dirpath, _, files in os.walk(path):
            for name in files:
                with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                    for dep in include.findall(f.read()):
                        if dep != folder:
                            graph.setdefault(folder, set()).add(dep)
                graph.setdefault(folder, set())

for folder in sorted(graph):
    print("%s -> %s" % (folder, " ".join(sorted(graph[folder])) or "-"))


def cycle_from(start):
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for dep in graph.get(node, ()):
            if dep == start:
                return path + [start]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, path + [dep]))
    return None


for folder in sorted(graph):
    found = cycle_from(folder)
    if found:
        print("include cycle between common/ folders: " + " -> ".join(found))
        sys.exit(1)
print("no cycle between %d folders" % len(graph))
