"""AWS IoT Core custom authorizer: `topicguard aws authorizer`, shipped in the package."""
import base64, json, os, subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.environ.get("TOPICGUARD_BIN", os.path.join(HERE, "topicguard"))
POLICY = os.environ.get("TOPICGUARD_POLICY", os.path.join(HERE, "policy.policy"))
TRUST = os.environ.get("TOPICGUARD_TRUST", "idp=" + os.path.join(HERE, "jwks.json"))


def handler(event, context):
    mqtt = (event.get("protocolData") or {}).get("mqtt") or {}
    password = mqtt.get("password")  # base64, as AWS IoT Core sends it
    token = base64.b64decode(password).decode() if password else event.get("token", "")
    account = context.invoked_function_arn.split(":")[4]  # region: $AWS_REGION
    args = [BINARY, "aws", "authorizer", "--policy", POLICY, "--trust", TRUST,
            "--token", "-", "--account", account]
    if mqtt.get("clientId"):
        args += ["--client-id", mqtt["clientId"]]
    done = subprocess.run(args, input=token.encode(), capture_output=True, timeout=4)
    print(done.stderr.decode(errors="replace"), end="")  # reasons, never the token
    if done.returncode in (0, 1):  # 1: refused, stdout holds the refusing response
        return json.loads(done.stdout)
    raise RuntimeError(f"topicguard aws authorizer exited {done.returncode}")
