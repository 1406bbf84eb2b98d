# bash completion for ipckit(1)                                  -*- shell-script -*-

_ipckit_schemes="file: shm:/ exec: fifo: mq:/ sysv: unix: unixgram: unixpacket: tcp:// udp:// signal:"

# Addresses: a scheme first, then paths for the schemes that take one, and the objects `ipckit
# ls` knows for rm.
_ipckit_url()
{
    local cur=$1
    case $cur in
    file:* | fifo:* | unix:* | unixgram:* | unixpacket:*)
        local scheme=${cur%%:*} path=${cur#*:}
        COMPREPLY=($(compgen -f -- "$path"))
        COMPREPLY=("${COMPREPLY[@]/#/$scheme:}")
        compopt -o filenames 2>/dev/null
        ;;
    mq:/* | shm:/*)
        local dir=/dev/shm f names=""
        [[ $cur == mq:* ]] && dir=/dev/mqueue
        for f in "$dir"/*; do
            [[ -f $f && ${f##*/} != sem.* ]] && names+="${cur%%/*}/${f##*/} "
        done
        COMPREPLY=($(compgen -W "$names" -- "$cur"))
        ;;
    signal:*)
        COMPREPLY=($(compgen -W "signal:self $(cd /proc && printf 'signal:%s ' [0-9]*)" -- "$cur"))
        ;;
    *)
        COMPREPLY=($(compgen -W "$_ipckit_schemes" -- "$cur"))
        compopt -o nospace 2>/dev/null
        ;;
    esac
}

_ipckit()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion -n : || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="send recv relay ls rm info tour bench serve"
    if ((cword == 1)); then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi

    local cmd=${words[1]} opts=""
    case $cmd in
    send)
        opts="--stdin --count --interval --timeout --prio --type --option --listen --dial --help"
        case $prev in
        -s | --stdin)
            COMPREPLY=($(compgen -W "lines whole framed" -- "$cur"))
            return
            ;;
        -c | --count | -i | --interval | -t | --timeout | -p | --prio | -T | --type | -o | --option)
            return
            ;;
        esac
        ;;
    recv)
        opts="--count --timeout --format --option --listen --dial --help"
        case $prev in
        -f | --format)
            COMPREPLY=($(compgen -W "text hex json raw" -- "$cur"))
            return
            ;;
        -n | --count | -t | --timeout | -o | --option)
            return
            ;;
        esac
        ;;
    relay)
        opts="--first --second --one-way --once --count --timeout --verbose --help"
        case $prev in
        -1 | --first | -2 | --second)
            COMPREPLY=($(compgen -W "listen dial" -- "$cur"))
            return
            ;;
        -n | --count | -t | --timeout)
            return
            ;;
        esac
        ;;
    ls | rm)
        opts="--json --stale --dir --kind --help"
        [[ $cmd == rm ]] && opts="--stale --dry-run --dir --kind --help"
        case $prev in
        -D | --dir)
            COMPREPLY=($(compgen -d -- "$cur"))
            return
            ;;
        -k | --kind)
            COMPREPLY=($(compgen -W "posix-shm posix-sem posix-mq sysv-msg sysv-shm sysv-sem fifo unix-socket unix-abstract" -- "$cur"))
            return
            ;;
        esac
        if [[ $cmd == rm && $cur != -* ]]; then
            COMPREPLY=($(compgen -W "$(ipckit ls 2>/dev/null | awk 'NR > 1 { print $NF }')" -- "$cur"))
            __ltrim_colon_completions "$cur" 2>/dev/null
            return
        fi
        ;;
    tour)
        opts="--step --help"
        if [[ $prev == -s || $prev == --step ]]; then
            COMPREPLY=($(compgen -W "file shm pipe fifo sysv mq tcp unix udp shutdown signal" -- "$cur"))
            return
        fi
        ;;
    info)
        opts="--help"
        ;;
    bench)
        opts="--size --count --duration --cpu --mode --repeat --no-raw --peers --json= --csv= --chart --quiet --help"
        case $prev in
        -c | --cpu)
            COMPREPLY=($(compgen -W "same cross none" -- "$cur"))
            return
            ;;
        -m | --mode)
            COMPREPLY=($(compgen -W "latency throughput both" -- "$cur"))
            return
            ;;
        --chart)
            COMPREPLY=($(compgen -f -- "$cur"))
            compopt -o filenames 2>/dev/null
            return
            ;;
        -s | --size | -n | --count | -d | --duration | -r | --repeat)
            return
            ;;
        esac
        if [[ $cur == --json=* || $cur == --csv=* ]]; then
            COMPREPLY=($(compgen -f -P "${cur%%=*}=" -- "${cur#*=}"))
            compopt -o filenames 2>/dev/null
            return
        fi
        ;;
    serve)
        opts="--proto --workers --max-conn --max-frame --idle-timeout --read-timeout --shutdown-timeout --kill-timeout --log --pid-file --help"
        case $prev in
        -p | --proto)
            COMPREPLY=($(compgen -W "echo raw" -- "$cur"))
            return
            ;;
        --log | --pid-file)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        -w | --workers | --max-conn | --max-frame | --*-timeout)
            return
            ;;
        esac
        ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    elif [[ $cmd == ls ]]; then
        COMPREPLY=()
    else
        _ipckit_url "$cur"
        __ltrim_colon_completions "$cur" 2>/dev/null
    fi
}

complete -F _ipckit ipckit
