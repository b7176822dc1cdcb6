package purchasesync.joinbench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.kafka.streams.kstream.ValueJoinerWithKey;

/**
 * Work comparable to the join's per purchase: parse both raw JSON values (Shopify's orders/create
 * body, the storefront event), and write one purchase with site, order number, email, subtotal,
 * currency, where it was registered from, and which compared fields differ.
 */
final class PurchaseJoiner implements ValueJoinerWithKey<String, byte[], byte[], byte[]> {
    private static final ObjectMapper M = new ObjectMapper();

    @Override
    public byte[] apply(String key, byte[] webhook, byte[] storefront) {
        try {
            JsonNode w = webhook == null ? null : M.readTree(webhook);
            JsonNode s = storefront == null ? null : M.readTree(storefront);
            String wEmail = text(w, "/email"), wSub = text(w, "/subtotal_price_set/presentment_money/amount"),
                    wCur = text(w, "/presentment_currency");
            String sEmail = text(s, "/customer/email"), sSub = text(s, "/purchase/subtotal"),
                    sCur = text(s, "/purchase/currency_iso_code");
            int slash = key.indexOf('/');
            ObjectNode out = M.createObjectNode();
            out.put("site", slash < 0 ? "" : key.substring(0, slash));
            out.put("order_number", key.substring(slash + 1));
            out.put("registered_via", s != null ? "storefront" : "webhook");
            out.put("matched", w != null && s != null);
            out.put("email", s != null ? sEmail : wEmail);
            out.put("subtotal", s != null ? sSub : wSub);
            out.put("currency", s != null ? sCur : wCur);
            ArrayNode differs = out.putArray("differs");
            if (w != null && s != null) {
                if (sEmail != null && wEmail != null && !sEmail.equalsIgnoreCase(wEmail)) {
                    differs.add("email");
                }
                if (sSub != null && wSub != null && !sameAmount(sSub, wSub)) {
                    differs.add("subtotal");
                }
                if (sCur != null && wCur != null && !sCur.equals(wCur)) {
                    differs.add("currency");
                }
            }
            return M.writeValueAsBytes(out);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot join " + key, e);
        }
    }

    private static String text(JsonNode n, String pointer) {
        if (n == null) {
            return null;
        }
        JsonNode v = n.at(pointer);
        return v.isMissingNode() || v.isNull() ? null : v.asText();
    }

    private static boolean sameAmount(String a, String b) {
        try {
            return new BigDecimal(a).compareTo(new BigDecimal(b)) == 0;
        } catch (NumberFormatException e) {
            return a.equals(b);
        }
    }
}
