# Outrigger container image.
#   docker build -t outrigger .
#   docker run -p 8080:8080 -v outrigger-data:/var/lib/outrigger outrigger
# Debian packages come from the one list, debian-packages.txt, through
# tools/deps.sh: tag `build` for the build stage, tag `runtime` for the image.

# ---- build stage: compile the daemon and the plugins --------------------------
FROM debian:12-slim AS build
WORKDIR /src
# The package list and its reader first: this layer stays cached until the
# list changes. Recommends stay on here: gcc only *recommends* libc6-dev (the
# C library headers), and the build stage's size does not matter.
COPY debian-packages.txt ./
COPY tools/deps.sh tools/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y $(sh tools/deps.sh list build) \
 && rm -rf /var/lib/apt/lists/*
# Then the whole repo (minus .dockerignore), and build/outrigger + plugins/*.so.
COPY . .
RUN make

# ---- runtime stage: shared libraries, the binary, plugins, web, migrations ----
FROM debian:12-slim
# Same again for the runtime libraries (deps.sh reads ../debian-packages.txt
# relative to itself, hence the layout under /tmp/deps).
COPY debian-packages.txt /tmp/deps/debian-packages.txt
COPY tools/deps.sh /tmp/deps/tools/deps.sh
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(sh /tmp/deps/tools/deps.sh list runtime) \
 && rm -rf /var/lib/apt/lists/* /tmp/deps

COPY --from=build /src/build/outrigger /src/build/outrigger-step /opt/outrigger/bin/
# plugins/ holds the built-in plugins' sources too (harmless); a wildcard
# for *.so would fail the build while no loadable plugin exists.
COPY --from=build /src/plugins/ /opt/outrigger/plugins/
COPY --from=build /src/web/ /opt/outrigger/web/
COPY --from=build /src/db/migrations/ /opt/outrigger/db/migrations/
ENV PATH=/opt/outrigger/bin:$PATH

# An unprivileged user owns the data directory (the SQLite database lives there).
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/outrigger --shell /usr/sbin/nologin outrigger \
 && mkdir -p /var/lib/outrigger \
 && chown outrigger:outrigger /var/lib/outrigger
VOLUME /var/lib/outrigger
USER outrigger
WORKDIR /opt/outrigger

EXPOSE 8080
# curl is tagged `runtime` in debian-packages.txt for this check.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/api/v1/health || exit 1

CMD ["outrigger", "serve", "--listen", "0.0.0.0:8080", "--db", "/var/lib/outrigger/outrigger.db", "--web", "/opt/outrigger/web", "--plugins", "/opt/outrigger/plugins"]
