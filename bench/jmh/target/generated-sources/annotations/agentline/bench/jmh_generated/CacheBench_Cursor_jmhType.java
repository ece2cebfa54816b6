package agentline.bench.jmh_generated;
public class CacheBench_Cursor_jmhType extends CacheBench_Cursor_jmhType_B3 {
}

