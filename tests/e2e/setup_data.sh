# Fixture: Fashion-MNIST (Debian's dataset-fashion-mnist) converted once into test-data/.
source "$(dirname "$0")/common.sh"
trap - EXIT
rm -rf "$WORK"
if [ -f "$DATA/index.toml" ] && "$SHARDIFY" verify "$DATA" >/dev/null 2>&1; then
  echo "test data ready in $DATA"; exit 0
fi
rm -rf "$DATA"
"$SHARDIFY" idx /usr/share/datasets/fashion-mnist "$DATA"
"$SHARDIFY" verify "$DATA"
