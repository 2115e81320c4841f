"""The real grammars of the names models.yaml and the stack carry: each check returns what is wrong in plain words,
naming the part of the value that breaks the rule, or None when the value is valid."""

from __future__ import annotations

import ipaddress
import re

from .errors import quote

# RFC 1035 label, as Kubernetes validates Service and Namespace names (apimachinery validation.IsDNS1035Label).
DNS1035_CHARS = re.compile(r"[a-z0-9-]")


def dns_label(value: str, max_len: int) -> str | None:
    """A DNS-1035 label: lower-case letters, digits and '-', a letter first, a letter or digit last."""
    rule = (f"a DNS label is 1 to {max_len} lower-case letters, digits and '-', starting with a letter and "
            "ending with a letter or digit")
    if not value:
        return f"is empty; {rule}"
    if len(value) > max_len:
        return f"is {len(value)} characters long, over the limit of {max_len}; {rule}"
    for pos, char in enumerate(value, 1):
        if not DNS1035_CHARS.fullmatch(char):
            hint = " (upper-case: use lower case)" if char.isupper() else ""
            return f"character {quote(char)} at position {pos} is not allowed{hint}; {rule}"
    if not value[0].isalpha():
        return f"starts with {quote(value[0])}; {rule}"
    if value[-1] == "-":
        return f"ends with '-'; {rule}"
    return None


# POSIX shell variable names: what every engine's shell and entrypoint reads back without surprise.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_name(value: str) -> str | None:
    if ENV_NAME.fullmatch(value):
        return None
    rule = "an environment variable name is letters, digits and '_', not starting with a digit"
    if not value:
        return f"is empty; {rule}"
    bad = next((c for c in value if not re.fullmatch(r"[A-Za-z0-9_]", c)), None)
    if bad is not None:
        return f"character {quote(bad)} at position {value.index(bad) + 1} is not allowed; {rule}"
    return f"starts with the digit {quote(value[0])}; {rule}"


# The OCI image reference grammar of distribution/reference (reference.go, v0.5.0; also the OCI distribution spec):
#   reference := name [ ":" tag ] [ "@" digest ];  name := [domain '/'] path;  domain := host [':' port]
#   domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
#   path-component := /[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*/;  tag := /[\w][\w.-]{0,127}/
#   digest := algorithm ":" hex;  NameTotalLengthMax = 255
# The first component is a domain when it holds '.' or ':', is 'localhost', or has upper case (splitDockerDomain).
DOMAIN_COMPONENT = re.compile(r"[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]")
PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
# go-digest's registered algorithms and their hex lengths (opencontainers/go-digest algorithm.go).
DIGEST_HEX = {"sha256": 64, "sha512": 128}
NAME_MAX = 255


def image_reference(value: str) -> str | None:
    """What is wrong with an image reference, by part (domain, repository path, tag, digest), or None."""
    rest, at, digest = value.partition("@")
    if at:
        algorithm, colon, hex_ = digest.partition(":")
        if algorithm not in DIGEST_HEX or not colon:
            return f"digest {quote(digest)} is not ALGORITHM:HEX with algorithm {' or '.join(DIGEST_HEX)}"
        if not re.fullmatch(rf"[0-9a-f]{{{DIGEST_HEX[algorithm]}}}", hex_):
            return f"digest {quote(digest)}: {algorithm} needs {DIGEST_HEX[algorithm]} lower-case hex digits"
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    name, tag = (rest[:colon], rest[colon + 1:]) if colon > slash else (rest, None)
    if tag is not None and not TAG.fullmatch(tag):
        return (f"tag {quote(tag)} is not a tag: 1 to 128 letters, digits, '_', '.' and '-', not starting with "
                "'.' or '-'")
    if not name:
        return "has no repository name"
    if len(name) > NAME_MAX:
        return f"repository name is {len(name)} characters long, over the limit of {NAME_MAX}"
    parts = name.split("/")
    first = parts[0]
    if len(parts) > 1 and (any(c in first for c in ".:") or first == "localhost" or first.lower() != first):
        host, _, port = first.partition(":")
        if port and not port.isdigit():
            return f"registry port {quote(port)} is not a number"
        if not (host.startswith("[") and host.endswith("]")) and not all(
                DOMAIN_COMPONENT.fullmatch(c) for c in host.split(".")):
            return (f"registry host {quote(host)} is not a domain name: dot-separated letters, digits and '-', "
                    "each part starting and ending with a letter or digit")
        parts = parts[1:]
    for part in parts:
        if not PATH_COMPONENT.fullmatch(part):
            hint = " (upper case is not allowed in a repository path)" if part.lower() != part else ""
            return (f"repository path component {quote(part)} is not valid{hint}: lower-case letters and digits, "
                    "separated by one '.', one or two '_', or '-'")
    return None


# S3 general purpose bucket naming rules (Amazon S3 User Guide, "Bucket naming rules").
BUCKET_CHARS = re.compile(r"[a-z0-9.-]")
BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


def s3_bucket(value: str) -> str | None:
    if not 3 <= len(value) <= 63:
        return f"bucket {quote(value)} is {len(value)} characters long; S3 bucket names are 3 to 63 characters"
    bad = next((c for c in value if not BUCKET_CHARS.fullmatch(c)), None)
    if bad is not None:
        return (f"bucket {quote(value)}: character {quote(bad)} is not allowed; S3 bucket names are lower-case "
                "letters, digits, '.' and '-'")
    if not (value[0].isalnum() and value[-1].isalnum()):
        return f"bucket {quote(value)} must begin and end with a letter or digit"
    if ".." in value:
        return f"bucket {quote(value)} contains two adjacent periods"
    # Dot-separated parts are DNS labels for virtual-hosted addressing: none may begin or end with '-'.
    if ".-" in value or "-." in value:
        return f"bucket {quote(value)}: a '-' next to a '.' is not allowed"
    try:
        ipaddress.IPv4Address(value)
        return f"bucket {quote(value)} is formatted as an IP address"
    except ValueError:
        pass
    for prefix in BUCKET_PREFIXES:
        if value.startswith(prefix):
            return f"bucket {quote(value)} starts with the reserved prefix {quote(prefix)}"
    for suffix in BUCKET_SUFFIXES:
        if value.endswith(suffix):
            return f"bucket {quote(value)} ends with the reserved suffix {quote(suffix)}"
    return None


# S3 object key "safe characters" (Amazon S3 User Guide, "Naming Amazon S3 objects") and '/', without '*': an
# s3 prefix becomes an IAM resource and an s3:prefix condition, where '*' and '?' are wildcards matching siblings.
S3_KEY_CHARS = re.compile(r"[A-Za-z0-9!_.'()/-]")
# Hugging Face repository ids: ORG/REPO of letters, digits, '_', '.' and '-', each starting with a letter or digit.
HF_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
SOURCE_RULE = "allowed: hf://ORG/REPO or s3://BUCKET/PREFIX"


def model_source(value: str) -> str | None:
    """hf://ORG/REPO or s3://BUCKET/PREFIX, matched in full (no trailing newline, no glob characters)."""
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("hf", "s3"):
        return f"is not a model source; {SOURCE_RULE}"
    if scheme == "hf":
        parts = rest.split("/")
        if len(parts) != 2:
            return f"a Hugging Face source is hf://ORG/REPO, exactly one '/' after the scheme; {SOURCE_RULE}"
        for what, part in zip(("organisation", "repository"), parts, strict=True):
            if not HF_PART.fullmatch(part):
                return (f"{what} {quote(part)} is not valid: letters, digits, '_', '.' and '-', starting with a "
                        "letter or digit")
        return None
    bucket, slash, prefix = rest.partition("/")
    problem = s3_bucket(bucket)
    if problem:
        return problem
    if not slash or not prefix.strip("/"):
        return f"an S3 source needs a prefix after the bucket (s3://BUCKET/PREFIX); {SOURCE_RULE}"
    bad = next((c for c in prefix if not S3_KEY_CHARS.fullmatch(c)), None)
    if bad is not None:
        why = " (a wildcard in the IAM policy: it would grant sibling prefixes)" if bad in "*?" else ""
        return (f"prefix character {quote(bad)} is not allowed{why}; S3 prefixes here are letters, digits, '/' and "
                "! _ . ' ( ) -")
    return None
