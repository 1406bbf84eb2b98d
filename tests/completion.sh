#!/bin/bash
# completion.sh COMPLETION_FILE - the bash completion of ipckit completes the options of bench,
# info and serve (and their values), as CTest runs it.
set -u
. "$1"
fail() { echo "completion: $*" >&2; exit 1; }
# complete WORDS...: the candidates for the last word.
complete_words() {
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMPREPLY=()
    _ipckit
    echo " ${COMPREPLY[*]} "
}
out=$(complete_words ipckit bench --c)
for w in --count --cpu --csv= --chart; do [[ $out == *" $w "* ]] || fail "bench --c: no $w in:$out"; done
out=$(complete_words ipckit bench --)
for w in --size --duration --mode --repeat --no-raw --peers --json= --quiet --help; do
    [[ $out == *" $w "* ]] || fail "bench --: no $w in:$out"
done
out=$(complete_words ipckit bench --cpu "")
[[ $out == " same cross none " ]] || fail "bench --cpu: $out"
out=$(complete_words ipckit bench -m t)
[[ $out == " throughput " ]] || fail "bench -m t: $out"
out=$(complete_words ipckit info --)
[[ $out == " --schemes --options --kinds --status --help " ]] || fail "info --: $out"
out=$(complete_words ipckit info m)
[[ $out == *" mq:/ "* ]] || fail "info m: $out"
out=$(complete_words ipckit ch)
[[ $out == " chat " ]] || fail "ch: $out"
out=$(complete_words ipckit chat -s "")
[[ $out == " lines framed whole " ]] || fail "chat -s: $out"
out=$(complete_words ipckit recv -f f)
[[ $out == " framed " ]] || fail "recv -f f: $out"
# serve: every long option its --help lists, no other; and the values of some.
help=$(ipckit serve --help) || fail "ipckit serve --help failed"
want=$(grep -oE -- '--[a-z][a-z-]*' <<<"$help" | sort -u | tr '\n' ' ')
out=$(complete_words ipckit serve --)
got=$(tr ' ' '\n' <<<"$out" | grep -v '^$' | sort -u | tr '\n' ' ')
[[ $got == "$want" ]] || fail "serve --: completes [$got], serve --help lists [$want]"
out=$(complete_words ipckit serve --exec-framing "")
[[ $out == " len line " ]] || fail "serve --exec-framing: $out"
out=$(complete_words ipckit serve -p "")
[[ $out == " echo raw " ]] || fail "serve -p: $out"
echo "completion: bench, info, chat, recv and serve complete"
