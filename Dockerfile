# res2net: one static binary in an image with nothing else (see README,
# "Serving"). Build and run:
#
#   docker build -t res2net:latest .
#   docker run --rm -p 8080:8080 -v res2net-models:/models res2net:latest
#
# The server looks for the published checkpoint in /models (RES2NET_HOME)
# and downloads it there on first start when it is missing. Mount a volume
# (or a read-only copy of `res2net fetch`'s file) at /models, or bake a
# checkpoint in at build time with
#
#   docker build --build-arg CHECKPOINT=path/in/context.pth -t res2net:baked .
#
# which copies it to /models under its own name: give it the published
# file's name to have it served by default, or run
# `serve --weights /models/NAME.pth` for another.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
# Static, as `make build`: CGO off, no libc needed at run time.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/res2net ./cmd/res2net \
	&& /out/res2net version

FROM build AS models
ARG CHECKPOINT=
RUN mkdir -p /models \
	&& if [ -n "${CHECKPOINT}" ]; then cp "/src/${CHECKPOINT}" /models/; fi

FROM scratch AS serve
# CA roots for the first-start download from GitHub; nothing else of the
# build image is kept.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/res2net /usr/local/bin/res2net
COPY --from=models --chown=65532:65532 /models /models
ENV RES2NET_HOME=/models
# A numeric non-root user: scratch has no /etc/passwd, and Kubernetes'
# runAsNonRoot can only check a number.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/res2net"]
CMD ["serve", "--addr", ":8080", "--log-format", "json"]
