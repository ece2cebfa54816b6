package agentline.bench.jmh_generated;
public class CacheBench_jmhType extends CacheBench_jmhType_B3 {
}

