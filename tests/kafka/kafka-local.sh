#!/usr/bin/env bash
# A local Apache Kafka for tests, from Maven Central's jars, in KRaft mode on loopback.
#
#   kafka-local.sh start [--brokers N] [--secure] [--version V] [--group-protocols P] [--state DIR]
#                                                                 start N (1 or 3) combined broker/controller nodes
#   kafka-local.sh stop [--state DIR]                             stop them and delete their data
#   kafka-local.sh restart [--state DIR]                          stop and start again, keeping the data
#   kafka-local.sh status [--state DIR]                           print the bootstrap address if running
#   kafka-local.sh tool CLASS ARGS... [--state DIR]               run a Kafka tool class with the same jars
#
# `start` prints the bootstrap address and writes it to DIR/bootstrap. --secure adds a
# SASL_SSL listener (certificates made with openssl, SCRAM-SHA-512 user `agentline`) whose
# address, CA and password land in DIR/secure-bootstrap, DIR/ca.pem and DIR/password, and an
# mTLS listener (TLS with a client certificate required) at DIR/mtls-bootstrap, whose client
# certificate and key are DIR/client.crt and DIR/client.key.
# Installs a JDK and Maven with apt-get if they are missing; the jars are resolved once per
# machine into the machine-wide cache (scripts/lib/cache.sh), kafka-<version>/libs.
# --version picks another Kafka release than the pom's. --group-protocols sets the brokers'
# group.coordinator.rebalance.protocols (default classic,consumer).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../../scripts/lib/cache.sh
. "$root/scripts/lib/cache.sh"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")

cmd=${1:-}
shift || true
brokers=1
secure=0
group_protocols=classic,consumer
state="$root/.cache/kafka/state"
tool_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --brokers) brokers=$2; shift 2 ;;
    --secure) secure=1; shift ;;
    --state) state=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --group-protocols) group_protocols=$2; shift 2 ;;
    *) tool_args+=("$1"); shift ;;
  esac
done

libs="$agentline_cache/kafka-$version/libs"
# restart/tool/status use the version the state was started with.
[ "$cmd" = start ] || [ ! -f "$state/version" ] || { version=$(cat "$state/version"); libs="$agentline_cache/kafka-$version/libs"; }

die() { echo "kafka-local: $*" >&2; exit 1; }

ensure_java() {
  if command -v java >/dev/null && command -v mvn >/dev/null && command -v keytool >/dev/null; then return; fi
  echo "kafka-local: installing a JDK and Maven with apt-get" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends default-jdk-headless maven >&2 ||
    { $sudo apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends default-jdk-headless maven >&2; } ||
    die "cannot install Java and Maven; the real-Kafka tier cannot run"
  command -v java >/dev/null && command -v mvn >/dev/null || die "java or mvn still missing after apt-get"
}

# Two starts at once on a fresh machine (the tier's plain and secure brokers) resolve the jars
# once: the second waits on the lock and finds them complete.
ensure_jars() {
  if [ -f "$libs/.complete" ]; then return; fi
  ensure_java
  mkdir -p "$(dirname "$libs")"
  local lock
  exec {lock}>"$libs.lock"
  flock "$lock"
  if [ ! -f "$libs/.complete" ]; then
    echo "kafka-local: resolving Apache Kafka $version from Maven Central" >&2
    rm -rf "$libs"
    mkdir -p "$libs"
    mvn -B -q -f "$here/pom.xml" -Dkafka.version="$version" dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs" >&2 ||
      die "mvn could not resolve Kafka $version"
    touch "$libs/.complete"
  fi
  exec {lock}>&-
}

kafka_java() {
  java -Xms64m -Xmx512m -XX:+UseSerialGC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/log4j2-tools.properties" -cp "$libs/*" "$@"
}

# N distinct free ports: every socket stays bound until all are chosen (one port at a time, the
# kernel may hand the same one out twice, and two listeners on one port stop the broker).
free_ports() {
  python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

wait_for_broker() {
  local bootstrap=$1 deadline=$((SECONDS + 90))
  until kcat -b "$bootstrap" -L -m 5 2>/dev/null | grep -q "broker"; do
    [ $SECONDS -lt $deadline ] || die "broker at $bootstrap did not come up; see $state/node-*.log"
    for pid_file in "$state"/node-*.pid; do
      kill -0 "$(cat "$pid_file")" 2>/dev/null || { tail -30 "${pid_file%.pid}.log" >&2; die "a broker process died"; }
    done
    sleep 0.5
  done
}

make_certificates() {
  local dir=$state/tls
  mkdir -p "$dir"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=agentline-test-ca" \
    -keyout "$dir/ca.key" -out "$state/ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$dir/broker.key" -out "$dir/broker.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/broker.csr" -CA "$state/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -extfile "$dir/ext.cnf" -out "$dir/broker.crt" 2>/dev/null
  # Kafka reads a PEM key store: the PKCS#8 key followed by the certificate chain.
  openssl pkcs8 -topk8 -nocrypt -in "$dir/broker.key" >"$dir/keystore.pem"
  cat "$dir/broker.crt" "$state/ca.pem" >>"$dir/keystore.pem"
  # A client certificate for the mTLS listener, signed by the same CA.
  openssl req -newkey rsa:2048 -nodes -subj "/CN=agentline-client" -keyout "$state/client.key" \
    -out "$dir/client.csr" 2>/dev/null
  openssl x509 -req -in "$dir/client.csr" -CA "$state/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial -days 2 \
    -out "$state/client.crt" 2>/dev/null
}

running() {
  local pid_file
  for pid_file in "$state"/node-*.pid; do
    [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null && return 0
  done
  return 1
}

start() {
  ! running || die "already running at $(cat "$state/bootstrap" 2>/dev/null) (state $state)"
  rm -rf "$state"  # left over from a run that was killed
  ensure_jars
  mkdir -p "$state"
  echo "$version" >"$state/version"
  local cluster_id ports=() cports=() sports=() mports=() voters="" scram=()
  cluster_id=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)
  local free
  read -ra free <<<"$(free_ports $((4 * brokers)))"
  for i in $(seq 1 "$brokers"); do
    ports+=("${free[$((4 * i - 4))]}"); cports+=("${free[$((4 * i - 3))]}")
    sports+=("${free[$((4 * i - 2))]}"); mports+=("${free[$((4 * i - 1))]}")
    voters+="${voters:+,}$i@127.0.0.1:${cports[$((i - 1))]}"
  done
  if [ "$secure" = 1 ]; then
    make_certificates
    head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$state/password"
    scram=(--add-scram "SCRAM-SHA-512=[name=agentline,password=$(cat "$state/password")]")
  fi
  local rf=$(( brokers >= 3 ? 3 : 1 )) isr=$(( brokers >= 3 ? 2 : 1 ))
  for i in $(seq 1 "$brokers"); do
    local p=${ports[$((i - 1))]} c=${cports[$((i - 1))]} s=${sports[$((i - 1))]} m=${mports[$((i - 1))]}
    local conf="$state/node-$i.properties"
    local listeners="PLAINTEXT://127.0.0.1:$p,CONTROLLER://127.0.0.1:$c"
    local advertised="PLAINTEXT://127.0.0.1:$p"
    local map="PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    if [ "$secure" = 1 ]; then
      listeners+=",SASL_SSL://127.0.0.1:$s,MTLS://127.0.0.1:$m"
      advertised+=",SASL_SSL://127.0.0.1:$s,MTLS://127.0.0.1:$m"
      map+=",SASL_SSL:SASL_SSL,MTLS:SSL"
    fi
    cat >"$conf" <<CONF
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$voters
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$map
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$state/data-$i
num.partitions=1
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
log.segment.bytes=16777216
# The consumer group protocol (KIP-848) takes a member's session timeout from the broker: the
# tests' services run with --session-timeout-ms 6000, and the same here (Kafka's default is
# 45 s, which is also its lower bound unless lowered). --group-protocols classic makes a broker
# that refuses the consumer protocol, like one before Kafka 4.
group.coordinator.rebalance.protocols=$group_protocols
group.consumer.min.session.timeout.ms=6000
group.consumer.session.timeout.ms=6000
group.consumer.min.heartbeat.interval.ms=500
group.consumer.heartbeat.interval.ms=1500
CONF
    if [ "$secure" = 1 ]; then
      cat >>"$conf" <<CONF
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$state/tls/keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$state/ca.pem
listener.name.mtls.ssl.client.auth=required
CONF
    fi
    kafka_java kafka.tools.StorageTool format -t "$cluster_id" -c "$conf" "${scram[@]}" >"$state/node-$i.format.log" 2>&1 ||
      { cat "$state/node-$i.format.log" >&2; die "formatting KRaft storage failed"; }
  done
  launch
  local bootstrap
  bootstrap=$(printf '127.0.0.1:%s,' "${ports[@]}"); bootstrap=${bootstrap%,}
  wait_for_broker "$bootstrap"
  echo "$bootstrap" >"$state/bootstrap"
  if [ "$secure" = 1 ]; then
    echo "127.0.0.1:${sports[0]}" >"$state/secure-bootstrap"
    echo "127.0.0.1:${mports[0]}" >"$state/mtls-bootstrap"
  fi
  echo "$bootstrap"
}

launch() {
  for conf in "$state"/node-*.properties; do
    local n=${conf%.properties}
    nohup java -Xms128m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$here/log4j2.properties" -cp "$libs/*" kafka.Kafka "$conf" >>"$n.log" 2>&1 &
    echo $! >"$n.pid"
  done
}

kill_nodes() {
  for pid_file in "$state"/node-*.pid; do
    [ -f "$pid_file" ] || continue
    local pid; pid=$(cat "$pid_file")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pid_file"
  done
}

case "$cmd" in
  start) start ;;
  stop) kill_nodes; rm -rf "$state" ;;
  restart)
    [ -f "$state/bootstrap" ] || die "not running (state $state)"
    kill_nodes
    launch
    wait_for_broker "$(cat "$state/bootstrap")"
    cat "$state/bootstrap" ;;
  status) [ -f "$state/bootstrap" ] && cat "$state/bootstrap" || { echo "not running" >&2; exit 1; } ;;
  tool) ensure_jars; kafka_java "${tool_args[@]}" ;;
  *) sed -n '2,14p' "$0"; exit 2 ;;
esac
