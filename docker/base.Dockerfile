# A base image from a root filesystem tarball (scripts/image makes it with mmdebstrap), for
# machines that reach Debian's package archive but no container registry.
FROM scratch
ADD base.tar /
