package agentline.bench;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.*;

/** Caffeine getIfPresent hit and miss, as bench/resilience_bench.cpp measures ResultCache. */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@State(Scope.Benchmark)
public class CacheBench {
  static final int KEYS = 8192;
  Cache<String, String> cache;
  String[] present = new String[KEYS];
  String[] absent = new String[KEYS];

  @State(Scope.Thread)
  public static class Cursor { int i; }

  @Setup
  public void setup() {
    cache = Caffeine.newBuilder().maximumSize(16384).expireAfterWrite(1, TimeUnit.DAYS).build();
    for (int i = 0; i < KEYS; i++) {
      // 64-character keys like Agentline's SHA-256 content keys.
      present[i] = String.format("%064x", i * 2654435761L);
      absent[i] = String.format("%064x", i * 2654435761L + 1);
      cache.put(present[i], "value-" + i);
    }
  }

  @Benchmark @Threads(1) public String hit1(Cursor c) { return cache.getIfPresent(present[c.i++ & (KEYS - 1)]); }
  @Benchmark @Threads(2) public String hit2(Cursor c) { return cache.getIfPresent(present[c.i++ & (KEYS - 1)]); }
  @Benchmark @Threads(1) public String miss1(Cursor c) { return cache.getIfPresent(absent[c.i++ & (KEYS - 1)]); }
  @Benchmark @Threads(2) public String miss2(Cursor c) { return cache.getIfPresent(absent[c.i++ & (KEYS - 1)]); }
}
