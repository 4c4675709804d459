# syntax=docker/dockerfile:1
# Build: docker build -t guildgate .
# Run:   docker run -p 8080:8080 -v guildgate-keys:/var/lib/guildgate/keys \
#          -v guildgate-data:/var/lib/guildgate/data -e GUILDGATE__ISSUER=https://id.example.com ... guildgate

FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
# --no-default-features: a production build, without `guildgate dev`'s fake Discord and demo app.
RUN mkdir -p src tests/api examples && echo 'fn main() {}' > src/main.rs \
    && cp src/main.rs examples/load.rs && touch src/lib.rs tests/api/main.rs \
    && cargo build --release --locked --no-default-features --bin guildgate \
    && rm -rf src tests examples
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --no-default-features --bin guildgate \
    && install -D -m 0755 target/release/guildgate /out/guildgate

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/guildgate --create-home guildgate \
    && install -d -o guildgate -g guildgate -m 0700 /var/lib/guildgate/keys /var/lib/guildgate/data
COPY --from=build /out/guildgate /usr/local/bin/guildgate
USER guildgate
WORKDIR /var/lib/guildgate
ENV GUILDGATE__SERVER__LISTEN=0.0.0.0:8080 \
    GUILDGATE__KEYS__DIR=/var/lib/guildgate/keys \
    GUILDGATE__DATABASE__URL=sqlite:///var/lib/guildgate/data/guildgate.db \
    GUILDGATE__LOG__FORMAT=json
VOLUME ["/var/lib/guildgate/keys", "/var/lib/guildgate/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD ["guildgate", "healthcheck"]
ENTRYPOINT ["guildgate"]
CMD ["serve"]
