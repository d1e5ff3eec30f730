#!/usr/bin/python3
"""Runs what the chart renders, in Docker: each rendered workload (the Redis StatefulSet, the
coordinator and worker Deployments) becomes containers started with exactly the container's
image, command, args and env (secretKeyRef and fieldRef resolved, $(VAR) expanded as the
kubelet does), its Secret volumes as read-only files at their mount paths, its emptyDirs as
tmpfs, and its security context (user, read-only root, no capabilities, no new privileges).
Services are names in /etc/hosts on one Docker network. When every pod is ready (its
readinessProbe answers), the chart's `helm test` pod runs the same way: it submits a job
through the release and must exit 0. A chart whose flags a binary rejects fails here.

  run_rendered.py RENDERED.yaml

The images are the rendered ones; the caller tags the local builds under those names.
Everything it starts is removed at the end, on failure too.
"""
import base64
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
SUBNET = "10.213.7.0/24"  # the test's own Docker network on this machine
PREFIX = "10.213.7."


def docker(*args, check=True, capture=True):
    result = subprocess.run([DOCKER, *args], text=True,
                            capture_output=capture)
    if check and result.returncode != 0:
        raise SystemExit(f"docker {' '.join(args[:3])}...: {result.stderr.strip()}")
    return result


def expand(text, env):
    """$(VAR) from the container's earlier variables; $$ is a literal $."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", sub, text)


class Release:
    def __init__(self, docs):
        self.docs = [d for d in docs if d]
        self.secrets = {d["metadata"]["name"]: {k: base64.b64decode(v) for k, v in
                                                (d.get("data") or {}).items()}
                        for d in self.docs if d["kind"] == "Secret"}
        self.configmaps = {d["metadata"]["name"]: {k: v.encode() for k, v in
                                                   (d.get("data") or {}).items()}
                           for d in self.docs if d["kind"] == "ConfigMap"}
        self.tmp = tempfile.mkdtemp(prefix="ff-chart-run.")
        self.network = f"ff-chart-{os.getpid()}"
        self.containers = []
        self.hosts = {}  # Service name (short and .ns.svc) -> IP
        self.next_ip = 2

    def of_kind(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def replicas(self, workload):
        if "replicas" in workload["spec"]:
            return workload["spec"]["replicas"]
        for hpa in self.of_kind("HorizontalPodAutoscaler") + self.of_kind("ScaledObject"):
            target = hpa["spec"]["scaleTargetRef"]["name"]
            if target == workload["metadata"]["name"]:
                return hpa["spec"].get("minReplicas", hpa["spec"].get("minReplicaCount", 1))
        return 1

    def volume_file(self, volume, key, item_path, base):
        if "secret" in volume:
            data = self.secrets[volume["secret"]["secretName"]][key]
        else:
            data = self.configmaps[volume["configMap"]["name"]][key]
        path = os.path.join(base, item_path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)

    def pod_args(self, name, pod_spec, labels):
        """docker run arguments for the pod's first container, and the container."""
        ip = PREFIX + str(self.next_ip)
        self.next_ip += 1
        c = pod_spec["containers"][0]
        args = ["run", "-d", "--name", name, "--hostname", name, "--network", self.network,
                "--ip", ip, "--label", "fetchfleet-chart-run=1"]
        for host, host_ip in self.hosts.items():
            args += ["--add-host", f"{host}:{host_ip}"]
        ctx = {**(pod_spec.get("securityContext") or {}), **(c.get("securityContext") or {})}
        if "runAsUser" in ctx:
            args += ["--user", f"{ctx['runAsUser']}:{ctx.get('runAsGroup', ctx['runAsUser'])}"]
        if ctx.get("readOnlyRootFilesystem"):
            args.append("--read-only")
        if "ALL" in (ctx.get("capabilities") or {}).get("drop", []):
            args += ["--cap-drop", "ALL"]
        if ctx.get("allowPrivilegeEscalation") is False:
            args += ["--security-opt", "no-new-privileges"]
        env = {}
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = expand(str(e["value"]), env)
            elif "secretKeyRef" in e["valueFrom"]:
                ref = e["valueFrom"]["secretKeyRef"]
                env[e["name"]] = self.secrets[ref["name"]][ref["key"]].decode()
            elif "fieldRef" in e["valueFrom"]:
                field = e["valueFrom"]["fieldRef"]["fieldPath"]
                env[e["name"]] = {"metadata.name": name, "status.podIP": ip}[field]
        for k, v in env.items():
            args += ["--env", f"{k}={v}"]
        volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
        for mount in c.get("volumeMounts", []):
            # Not among the pod's volumes: a StatefulSet's volume claim. A persistent
            # volume, like a claimed one: a directory that outlives the container.
            volume = volumes.get(mount["name"], {"persistentVolumeClaim": {}})
            if "emptyDir" in volume:
                args += ["--tmpfs", f"{mount['mountPath']}:mode=1777"]
                continue
            if "persistentVolumeClaim" in volume:
                base = os.path.join(self.tmp, name, mount["name"])
                os.makedirs(base, exist_ok=True)
                os.chmod(base, 0o777)
                args += ["--mount", f"type=bind,src={base},dst={mount['mountPath']}"]
                continue
            base = os.path.join(self.tmp, name, mount["name"])
            source = volume.get("secret") or volume.get("configMap")
            items = source.get("items")
            if items is None:
                data = (self.secrets[source["secretName"]] if "secret" in volume
                        else self.configmaps[source["name"]])
                items = [{"key": k, "path": k} for k in data]
            for item in items:
                self.volume_file(volume, item["key"], item["path"], base)
            os.chmod(base, 0o755)
            args += ["--mount", f"type=bind,src={base},dst={mount['mountPath']},readonly"]
        if c.get("command"):
            args += ["--entrypoint", c["command"][0]]
        args.append(c["image"])
        args += [expand(str(a), env) for a in (c.get("command") or [])[1:]]
        args += [expand(str(a), env) for a in c.get("args", [])]
        return args, c, ip

    def start(self, name, pod_spec, labels):
        args, container, ip = self.pod_args(name, pod_spec, labels)
        docker(*args)
        self.containers.append(name)
        print(f"started {name} ({container['image']}) at {ip}")
        return container, ip

    def wait_ready(self, name, container, ip, timeout=60):
        probe = container.get("readinessProbe")
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = json.loads(docker("inspect", name).stdout)[0]["State"]
            if not state["Running"]:
                raise SystemExit(f"{name} exited ({state['ExitCode']}):\n" + self.logs(name))
            if probe is None:
                return
            try:
                if "httpGet" in probe:
                    port = probe["httpGet"]["port"]
                    if isinstance(port, str):
                        port = next(p["containerPort"] for p in container["ports"]
                                    if p["name"] == port)
                    url = f"http://{ip}:{port}{probe['httpGet']['path']}"
                    with urllib.request.urlopen(url, timeout=2) as r:
                        if r.status == 200:
                            print(f"{name} ready ({url})")
                            return
                elif "tcpSocket" in probe:
                    import socket
                    port = probe["tcpSocket"]["port"]
                    if isinstance(port, str):
                        port = next(p["containerPort"] for p in container["ports"]
                                    if p["name"] == port)
                    socket.create_connection((ip, port), timeout=2).close()
                    print(f"{name} ready (tcp {ip}:{port})")
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"{name} not ready after {timeout} s:\n" + self.logs(name))

    def logs(self, name):
        r = docker("logs", "--tail", "40", name, check=False)
        return r.stdout + r.stderr

    def cleanup(self):
        for name in self.containers:
            docker("rm", "-f", name, check=False)
        docker("network", "rm", self.network, check=False)
        subprocess.run(["rm", "-rf", self.tmp])

    def run(self):
        docker("network", "create", "--subnet", SUBNET, "--label",
               "fetchfleet-chart-run=1", self.network)
        # Service names first: every container gets them all in /etc/hosts.
        workloads = self.of_kind("StatefulSet") + self.of_kind("Deployment")
        order = sorted(workloads, key=lambda w: ["redis", "coordinator", "worker"].index(
            w["metadata"]["labels"]["app.kubernetes.io/component"]))
        planned = {}
        ip = self.next_ip
        for w in order:
            planned[w["metadata"]["name"]] = PREFIX + str(ip)
            ip += self.replicas(w)
        ns = workloads[0]["metadata"]["namespace"]
        for svc in self.of_kind("Service"):
            selector = svc["spec"].get("selector") or {}
            for w in order:
                labels = w["spec"]["template"]["metadata"]["labels"]
                if selector and all(labels.get(k) == v for k, v in selector.items()):
                    for host in (svc["metadata"]["name"], f"{svc['metadata']['name']}.{ns}.svc"):
                        self.hosts[host] = planned[w["metadata"]["name"]]
        for w in order:
            for i in range(self.replicas(w)):
                name = f"{w['metadata']['name']}-{i}"
                container, ip = self.start(name, w["spec"]["template"]["spec"],
                                           w["spec"]["template"]["metadata"]["labels"])
                self.wait_ready(name, container, ip)
        # The helm test pod: its job must succeed.
        for pod in self.of_kind("Pod"):
            if pod["metadata"].get("annotations", {}).get("helm.sh/hook") != "test":
                continue
            name = pod["metadata"]["name"]
            self.start(name, pod["spec"], pod["metadata"]["labels"])
            waited = subprocess.run(["timeout", "180", DOCKER, "wait", name], text=True,
                                    capture_output=True)
            if waited.returncode != 0:
                raise SystemExit(f"the helm test pod did not end in 180 s:\n{self.logs(name)}")
            code = int(waited.stdout.strip())
            out = docker("logs", name, check=False)
            print(f"--- helm test pod {name} (exit {code}):\n{out.stderr}", end="")
            if code != 0:
                for w in self.containers:
                    print(f"--- {w}:\n{self.logs(w)}")
                raise SystemExit(f"the helm test pod exited {code}")
            results = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
            for r in results:
                print(f"  {r.get('id')} {r.get('url')}: {r.get('status')} by {r.get('worker')}")
            urls = self.configmaps[next(v["configMap"]["name"] for v in pod["spec"]["volumes"]
                                        if "configMap" in v)]["urls.txt"].decode().split()
            if len(results) != len(urls) or {r["url"] for r in results} != set(urls):
                raise SystemExit(f"{len(results)} results for {len(urls)} URLs")
            if not all(r.get("ok") for r in results):
                raise SystemExit(f"the test job's results are not all ok: {results}")
            print(f"helm test: {len(results)} results, all ok, through "
                  f"{len(self.containers) - 1} containers started from the rendered chart")


def main():
    with open(sys.argv[1]) as f:
        release = Release(list(yaml.safe_load_all(f)))
    # SIGTERM (CI's time limit, a Ctrl-C'd make) still removes what was started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        release.run()
    finally:
        release.cleanup()


if __name__ == "__main__":
    main()
