-- wrk script for scripts/bench-authz: POSTs one RabbitMQ topic check per request on
-- keep-alive connections. TG_BODY, TG_PATH and TG_CONTENT_TYPE come from the environment;
-- the script checks each answer once with curl before the load (wrk does not read bodies).
wrk.method = "POST"
wrk.path = os.getenv("TG_PATH") or "/rabbitmq/topic"
wrk.body = os.getenv("TG_BODY")
wrk.headers["Content-Type"] = os.getenv("TG_CONTENT_TYPE") or "application/x-www-form-urlencoded"

function done(summary, latency, requests)
   io.write(string.format("requests %d  checks/s %.0f  p50 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  errors %d\n",
      summary.requests, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000,
      latency:percentile(99.9) / 1000,
      summary.errors.connect + summary.errors.read + summary.errors.write
         + summary.errors.status + summary.errors.timeout))
end
