# code-runner: a multi-stage build giving a small runtime image with no
# compiler and no shell: the binary, the shipped languages and a default
# configuration (environment variables).
#
#   docker build -t code-runner .
#
# The base images are build arguments, so that a machine with no registry
# can build from local stand-ins of the same names (scripts/build-images
# --deploy); with a registry, the defaults are pulled.
ARG BUILD_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
# Dependencies first, in a layer of their own that survives source changes
# (with the build script and the sandboxes' supervisor it builds).
COPY Cargo.toml Cargo.lock build.rs ./
COPY tools ./tools
RUN mkdir src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && echo 'fn main() {}' > benches/compare.rs \
    && cargo build --release --locked --bin code-runner \
    && rm -rf src
COPY src ./src
COPY languages ./languages
COPY seccomp ./seccomp
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin code-runner \
    && mkdir -p /data

FROM ${RUNTIME_IMAGE}
COPY --from=build /src/target/release/code-runner /usr/local/bin/code-runner
COPY languages /etc/code-runner/languages
# Judge0's submissions: an SQLite file in a folder the service's user owns
# (mount a volume there to keep them; or point the key at PostgreSQL).
COPY --from=build --chown=65532:65532 /data /var/lib/code-runner
ENV CODE_RUNNER_SERVER__HOST=0.0.0.0 \
    CODE_RUNNER_SERVER__PORT=8001 \
    CODE_RUNNER_LANGUAGES_DIR=/etc/code-runner/languages \
    CODE_RUNNER_JUDGE0__DATABASE=sqlite:///var/lib/code-runner/judge0.sqlite \
    RUST_LOG=info
# An unprivileged user (distroless's `nonroot`); it reaches the Docker
# socket through the socket's group, given at run time as the user's group (`user: 65532:$DOCKER_GID`).
USER 65532:65532
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/code-runner", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/code-runner"]
