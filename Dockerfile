# gridbot: one image for the webhook workers, the scheduler and `gridbot db upgrade` (see compose.yaml).
# Docker does not run on the CI machines; tests/test_deployment.py checks that the install step below is the
# one .ci/run uses, so the image gets exactly the versions CI tested.
FROM python:3.11-slim-bookworm

# The distribution's Noto CJK fonts, so Chinese in charts and posters never renders as boxes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --create-home --home-dir /home/gridbot --shell /usr/sbin/nologin gridbot

WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# Dependencies first (their own layer, rebuilt only when the lock changes), at the lock's versions and hashes.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock

COPY pyproject.toml README.md LICENSE babel.cfg ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY locales ./locales
RUN pip install --no-cache-dir --no-deps .

USER gridbot
WORKDIR /home/gridbot
# Compile the catalogs into the image once (bot.i18n keeps them in the user's cache directory), so a new
# container does not parse them at start-up.
RUN python -c "from bot.i18n import available_locales, translator; [translator(l) for l in available_locales()]"
# Inside a container the webhook server must listen beyond loopback; nginx is the only thing that reaches it.
ENV GRIDBOT_WEBHOOK_LISTEN=0.0.0.0:8081
EXPOSE 8081
CMD ["gridbot", "run"]
