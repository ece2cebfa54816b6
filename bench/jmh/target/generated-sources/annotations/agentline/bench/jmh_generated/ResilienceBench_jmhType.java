package agentline.bench.jmh_generated;
public class ResilienceBench_jmhType extends ResilienceBench_jmhType_B3 {
}

