// A guardrail client in plain Java 17 (java.net.http only, no libraries).
//
//   javac -d out examples/java/GuardrailClient.java
//   java -cp out GuardrailClient http://127.0.0.1:8080 TELLER_KEY SUPERVISOR_KEY event.json
//
// Screens the event, then walks a counter session for it: open, ask the questions, deliver
// the notice, escalate, the supervisor's decision (with the supervisor's own key: four eyes),
// the outcome, close. Prints one line per step; exits 1 on any unexpected answer.

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

public final class GuardrailClient {
    // HTTP/1.1: the default h2c upgrade request is not understood by every ASGI server.
    private final HttpClient http = HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5))
            .build();
    private final String baseUrl;

    GuardrailClient(String baseUrl) {
        this.baseUrl = baseUrl.replaceAll("/+$", "");
    }

    /** The parsed JSON answer; throws with the problem's detail on a non-2xx status. */
    Object call(String method, String path, String key, String body) throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(baseUrl + path))
                .timeout(Duration.ofSeconds(30))
                .header("Authorization", "Bearer " + key)
                .header("Accept", "application/json");
        if (body == null) {
            request.method(method, HttpRequest.BodyPublishers.noBody());
        } else {
            request.header("Content-Type", "application/json")
                    .method(method, HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8));
        }
        HttpResponse<String> response = http.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        String type = response.headers().firstValue("Content-Type").orElse("");
        Object parsed = type.contains("json") ? Json.parse(response.body()) : response.body();
        if (response.statusCode() / 100 != 2) {
            // Errors are application/problem+json (RFC 9457): "detail" names the problem.
            Object detail = parsed instanceof Map<?, ?> problem ? problem.get("detail") : response.body();
            throw new GuardrailException(response.statusCode(), String.valueOf(detail));
        }
        return parsed;
    }

    Map<?, ?> step(String sessionId, String key, String stepJson) throws IOException, InterruptedException {
        return (Map<?, ?>) call("POST", "/v1/sessions/" + sessionId + "/steps", key, stepJson);
    }

    static final class GuardrailException extends RuntimeException {
        final int status;

        GuardrailException(int status, String detail) {
            super(status + ": " + detail);
            this.status = status;
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: GuardrailClient BASE_URL TELLER_KEY SUPERVISOR_KEY EVENT_JSON");
            System.exit(2);
        }
        GuardrailClient client = new GuardrailClient(args[0]);
        String teller = args[1];
        String supervisor = args[2];
        String event = Files.readString(Path.of(args[3]), StandardCharsets.UTF_8);

        // 1. Screen (a fresh event id each time: the service refuses to open a session twice).
        String screenEvent = withEventId(event, "java-" + UUID.randomUUID());
        Map<?, ?> decision = (Map<?, ?>) client.call("POST", "/v1/screen", teller, screenEvent);
        System.out.println("screen: action=" + decision.get("action") + " hits=" + ((List<?>) decision.get("hits")).size());

        // 2. A counter session for the same request.
        String sessionEvent = withEventId(event, "java-" + UUID.randomUUID());
        Map<?, ?> view = (Map<?, ?>) client.call("POST", "/v1/sessions", teller, sessionEvent);
        String sessionId = (String) view.get("session_id");
        System.out.println("open: session=" + sessionId + " state=" + view.get("state") + " action=" + view.get("action"));

        view = client.step(sessionId, teller, "{\"step\":\"ask_questions\"}");
        System.out.println("ask_questions: asked=" + view.get("questions_asked"));
        view = client.step(sessionId, teller, "{\"step\":\"deliver_notice\"}");
        System.out.println("deliver_notice: state=" + view.get("state"));
        view = client.step(sessionId, teller, "{\"step\":\"escalate\",\"reason\":\"elderly customer on the phone\"}");
        System.out.println("escalate: state=" + view.get("state"));

        try {  // a teller may not decide: the server answers 403
            client.step(sessionId, teller, "{\"step\":\"supervisor_approve\"}");
            throw new IllegalStateException("a teller's supervisor decision was accepted");
        } catch (GuardrailException refused) {
            System.out.println("teller approve refused: " + refused.status);
        }

        view = client.step(sessionId, supervisor, "{\"step\":\"supervisor_reject\",\"reason\":\"scam pattern\"}");
        System.out.println("supervisor_reject: state=" + view.get("state") + " action=" + view.get("action")
                + " supervisors=" + view.get("supervisor_ids"));
        view = client.step(sessionId, teller, "{\"step\":\"record_outcome\",\"outcome\":\"police_notified\",\"confirmed_fraud\":true}");
        System.out.println("record_outcome: state=" + view.get("state"));
        view = client.step(sessionId, teller, "{\"step\":\"close\"}");
        System.out.println("close: state=" + view.get("state") + " closed=" + view.get("closed"));
        if (!Boolean.TRUE.equals(view.get("closed"))) {
            System.exit(1);
        }
    }

    /** The event JSON with its top-level "event_id" replaced (the example keeps it on one line). */
    static String withEventId(String event, String id) {
        Map<?, ?> parsed = (Map<?, ?>) Json.parse(event);
        if (!parsed.containsKey("event_id")) {
            throw new IllegalArgumentException("the event has no event_id");
        }
        return event.replaceFirst("\"event_id\"\\s*:\\s*\"[^\"]*\"", "\"event_id\": \"" + id + "\"");
    }

    /** A small JSON reader: objects become LinkedHashMap, arrays ArrayList, numbers Double. */
    static final class Json {
        private final String text;
        private int at;

        private Json(String text) {
            this.text = text;
        }

        static Object parse(String text) {
            Json json = new Json(text);
            Object value = json.value();
            json.space();
            if (json.at != text.length()) {
                throw json.error("trailing characters");
            }
            return value;
        }

        private IllegalArgumentException error(String what) {
            return new IllegalArgumentException("JSON: " + what + " at offset " + at);
        }

        private void space() {
            while (at < text.length() && Character.isWhitespace(text.charAt(at))) {
                at++;
            }
        }

        private Object value() {
            space();
            if (at >= text.length()) {
                throw error("unexpected end");
            }
            char c = text.charAt(at);
            if (c == '{') {
                return object();
            }
            if (c == '[') {
                return array();
            }
            if (c == '"') {
                return string();
            }
            if (text.startsWith("true", at)) {
                at += 4;
                return Boolean.TRUE;
            }
            if (text.startsWith("false", at)) {
                at += 5;
                return Boolean.FALSE;
            }
            if (text.startsWith("null", at)) {
                at += 4;
                return null;
            }
            int start = at;
            while (at < text.length() && "+-0123456789.eE".indexOf(text.charAt(at)) >= 0) {
                at++;
            }
            if (start == at) {
                throw error("unexpected character '" + c + "'");
            }
            return Double.parseDouble(text.substring(start, at));
        }

        private Map<String, Object> object() {
            Map<String, Object> map = new LinkedHashMap<>();
            at++;
            space();
            if (text.charAt(at) == '}') {
                at++;
                return map;
            }
            while (true) {
                space();
                String key = string();
                space();
                expect(':');
                map.put(key, value());
                space();
                if (text.charAt(at) == ',') {
                    at++;
                } else {
                    expect('}');
                    return map;
                }
            }
        }

        private List<Object> array() {
            List<Object> list = new ArrayList<>();
            at++;
            space();
            if (text.charAt(at) == ']') {
                at++;
                return list;
            }
            while (true) {
                list.add(value());
                space();
                if (text.charAt(at) == ',') {
                    at++;
                } else {
                    expect(']');
                    return list;
                }
            }
        }

        private void expect(char c) {
            if (at >= text.length() || text.charAt(at) != c) {
                throw error("expected '" + c + "'");
            }
            at++;
        }

        private String string() {
            expect('"');
            StringBuilder out = new StringBuilder();
            while (true) {
                if (at >= text.length()) {
                    throw error("unterminated string");
                }
                char c = text.charAt(at++);
                if (c == '"') {
                    return out.toString();
                }
                if (c != '\\') {
                    out.append(c);
                    continue;
                }
                char escaped = text.charAt(at++);
                switch (escaped) {
                    case 'n' -> out.append('\n');
                    case 't' -> out.append('\t');
                    case 'r' -> out.append('\r');
                    case 'b' -> out.append('\b');
                    case 'f' -> out.append('\f');
                    case 'u' -> {
                        out.append((char) Integer.parseInt(text.substring(at, at + 4), 16));
                        at += 4;
                    }
                    default -> out.append(escaped);
                }
            }
        }
    }
}
