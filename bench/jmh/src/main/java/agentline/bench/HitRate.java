package agentline.bench;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;
import java.util.zip.GZIPInputStream;

/**
 * Caffeine's hit rate on the same traces as bench/hitrate.cpp: a trace file (one key per
 * line, gzip allowed) and cache sizes. Prints JSON lines {"trace","size","hit_rate"}.
 * Usage: HitRate TRACE NAME SIZE...
 */
public class HitRate {
  public static void main(String[] args) throws IOException {
    List<String> keys = new ArrayList<>();
    InputStream in = new FileInputStream(args[0]);
    if (args[0].endsWith(".gz")) in = new GZIPInputStream(in);
    try (BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
      for (String line; (line = r.readLine()) != null; ) {
        line = line.trim();
        if (!line.isEmpty() && !line.startsWith("*")) keys.add(line);
      }
    }
    for (int i = 2; i < args.length; i++) {
      long size = Long.parseLong(args[i]);
      // Same-thread maintenance: deterministic, as a simulator needs.
      Cache<String, Boolean> cache = Caffeine.newBuilder().maximumSize(size).executor(Runnable::run).build();
      long hits = 0;
      for (String k : keys) {
        if (cache.getIfPresent(k) != null) hits++; else cache.put(k, Boolean.TRUE);
      }
      System.out.printf(Locale.ROOT, "{\"trace\": \"%s\", \"size\": %d, \"hit_rate\": %.6f}%n", args[1], size, (double) hits / keys.size());
    }
  }
}
