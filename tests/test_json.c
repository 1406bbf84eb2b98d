/*
 * test_json.c - the tool's JSON writer (tools/ipckit/json.c): UTF-8 passes through, invalid
 * bytes never reach a string, binary goes base64 (RFC 4648 vectors), commas and nesting.
 */
#include "harness.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>

/* Runs fn on a writer over a memory stream and compares the text with want. */
static void expect(void (*fn)(json_w *w), const char *want)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    json_w w;
    json_init(&w, f);
    fn(&w);
    fclose(f);
    assert_string_equal(buf, want);
    free(buf);
}

static void w_utf8(json_w *w)
{
    json_arr(w);
    json_str(w, "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"); /* é, €, U+1F600 */
    json_str(w, "q\"b\\n\nt\tc\x01\x7f");
    json_end(w);
}

static void t_utf8_passes_through(void **state)
{
    (void)state;
    expect(
        w_utf8,
        "[\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\",\"q\\\"b\\\\n\\nt\\tc\\u0001\\u007f\"]");
}

static void t_utf8_validation(void **state)
{
    (void)state;
    assert_true(json_utf8_valid("", 0));
    assert_true(json_utf8_valid("h\xc3\xa9", 3));
    assert_true(json_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
    assert_true(json_utf8_valid("a\0b", 3));              /* U+0000 is UTF-8 (written \u0000) */
    assert_false(json_utf8_valid("\xc3", 1));             /* cut short */
    assert_false(json_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
    assert_false(json_utf8_valid("\xe0\x80\xaf", 3));     /* overlong, three bytes */
    assert_false(json_utf8_valid("\xed\xa0\x80", 3));     /* a UTF-16 surrogate */
    assert_false(json_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(json_utf8_valid("\xff", 1));
    assert_false(json_utf8_valid("\xc3\x28", 2)); /* no continuation byte */
}

static void w_bytes(json_w *w)
{
    static const char *const v[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    json_obj(w);
    json_bytes(w, "text", "h\xc3\xa9", 3);
    json_bytes(w, "bin", "a\xff\0b", 4);
    json_key(w, "b64");
    json_arr(w);
    for (size_t i = 0; i < 7; i++) {
        json_obj(w);
        json_bytes(w, "x", "\x80", 1); /* forces base64, then the RFC 4648 vectors */
        json_end(w);
        fputc(' ', w->f);
        fputc('"', w->f);
        json_base64(w->f, v[i], strlen(v[i]));
        fputc('"', w->f);
    }
    json_end(w);
    json_key(w, "n");
    json_num(w, 1.0 / 0.0, 2);
    json_key(w, "neg");
    json_int(w, -5);
    json_key(w, "t");
    json_bool(w, 1);
    json_key(w, "z");
    json_null(w);
    json_end(w);
}

static void t_bytes_and_structure(void **state)
{
    (void)state;
    expect(w_bytes, "{\"text\":\"h\xc3\xa9\",\"bin_base64\":\"Yf8AYg==\",\"b64\":["
                    "{\"x_base64\":\"gA==\"} \"\",{\"x_base64\":\"gA==\"} \"Zg==\","
                    "{\"x_base64\":\"gA==\"} \"Zm8=\",{\"x_base64\":\"gA==\"} \"Zm9v\","
                    "{\"x_base64\":\"gA==\"} \"Zm9vYg==\",{\"x_base64\":\"gA==\"} \"Zm9vYmE=\","
                    "{\"x_base64\":\"gA==\"} \"Zm9vYmFy\"],\"n\":null,\"neg\":-5,\"t\":true,"
                    "\"z\":null}");
}

static void w_invalid_str(json_w *w)
{
    json_str(w, "a\xff"
                "b");
}

static void t_invalid_bytes_never_reach_a_string(void **state)
{
    (void)state;
    expect(w_invalid_str, "\"a\xef\xbf\xbd"
                          "b\"");
}

IPKT_MAIN(cmocka_unit_test(t_utf8_passes_through), cmocka_unit_test(t_utf8_validation),
          cmocka_unit_test(t_bytes_and_structure),
          cmocka_unit_test(t_invalid_bytes_never_reach_a_string))
