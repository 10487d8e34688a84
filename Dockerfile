# fieldgate container image.
#   docker build -t fieldgate .
#   mkdir config && cp docker/fieldgate.json config/ && mosquitto_passwd -c config/passwd alice   # or: node bin/fieldgate.js passwd -c config/passwd alice
#   chmod 0644 config/passwd          # readable by the container's fieldgate user (the hashes are PBKDF2-SHA512)
#   docker run -d --name fieldgate --init \
#     -p 1883:1883 -p 9883:9883 \
#     -v fieldgate-data:/data \
#     -v "$PWD/config:/etc/fieldgate:ro" \
#     fieldgate
#   docker exec fieldgate fieldgate check          # fieldgate is on PATH; FIELDGATE_CONFIG names the config
# With a USB RS-485 adapter add --device /dev/serial/by-id/<yours>:/dev/ttyUSB0 and a device mapping
# (docker/devices/meter.json): README "Docker". compose.yaml does the same with docker compose.
# The image's own config is docker/fieldgate.json: the broker listens on 0.0.0.0 (loopback is not
# reachable through -p) and so refuses anonymous clients; data in /data; metrics on 9883, which the
# health check reads. Without a mounted /etc/fieldgate/passwd the gateway stops with that error.

# ---- build: compile TypeScript and the native modules (better-sqlite3; serialport ships prebuilt bindings) ----
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Dependencies first, so editing the sources does not reinstall them. Scripts are skipped here because
# the package's own "prepare" (the TypeScript build) needs the sources; the native modules are built next.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts \
 && npm rebuild better-sqlite3 @serialport/bindings-cpp
COPY tsconfig.json tsconfig.build.json ./
# The web console's build (scripts/build-console.mjs) bundles src/console/ui with the mapping schema.
COPY scripts ./scripts
COPY schemas ./schemas
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev \
 && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"

# ---- runtime ----
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    FIELDGATE_CONFIG=/etc/fieldgate/fieldgate.json \
    FIELDGATE_HEALTHCHECK_URL=http://127.0.0.1:9883/healthz
# A system user without a shell; dialout (gid 20 on Debian and Raspberry Pi OS) opens passed-in serial devices.
RUN groupadd --system fieldgate \
 && useradd --system --gid fieldgate --groups dialout --home-dir /data --no-create-home --shell /usr/sbin/nologin fieldgate \
 && mkdir -p /data /etc/fieldgate \
 && chown fieldgate:fieldgate /data \
 && chmod 0750 /data
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY devices ./devices
COPY docker/fieldgate.json /etc/fieldgate/fieldgate.json
# `docker exec fieldgate fieldgate check`: the command on PATH (Node follows the link to /app/bin).
RUN ln -s /app/bin/fieldgate.js /usr/local/bin/fieldgate
USER fieldgate
VOLUME /data
# MQTT and metrics; add 8883 (TLS) and 9001 (WebSocket) with -p when the config enables those listeners.
EXPOSE 1883 9883
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.FIELDGATE_HEALTHCHECK_URL,{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--max-semi-space-size=2", "--v8-pool-size=1", "--expose-gc", "bin/fieldgate.js"]
CMD ["run", "--config", "/etc/fieldgate/fieldgate.json"]
