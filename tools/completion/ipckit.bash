# bash completion for ipckit(1)                                  -*- shell-script -*-

# Nothing here lists schemes, kinds or option keys: the tool asks the library.
#   ipckit info --schemes          one address form a line: mq:/NAME, unix:PATH, tcp://HOST:PORT
#   ipckit info --options SCHEME   the option keys of SCHEME's addresses
#   ipckit info --kinds            the kinds of object ls and rm take with --kind
#   ipckit ls --urls               the addresses of the objects on this machine
# The placeholder of a form (its upper-case tail) says what completes it: PATH files, PID
# processes, NAME and KEY the objects that exist.

# Completes an address.
_ipckit_url()
{
    local cur=$1 form prefix best="" ph=""
    # After '?' or '&': the option keys of the scheme.
    if [[ $cur == *:*[?]* ]]; then
        local head=${cur%[?&]*}
        local sep=${cur:${#head}:1}
        COMPREPLY=($(compgen -P "$head$sep" -S = -W "$(ipckit info --options "${cur%%:*}" 2>/dev/null)" -- "${cur##*[?&]}"))
        compopt -o nospace 2>/dev/null
        return
    fi
    local prefixes=()
    while IFS= read -r form; do
        prefix=${form%%[A-Z]*}
        prefixes+=("$prefix")
        if [[ $cur == "$prefix"* && ${#prefix} -gt ${#best} && $prefix == *:* ]]; then
            best=$prefix
            ph=${form:${#prefix}}
        fi
    done < <(ipckit info --schemes 2>/dev/null)
    case $ph in
    PATH)
        COMPREPLY=($(compgen -f -- "${cur#"$best"}"))
        COMPREPLY=("${COMPREPLY[@]/#/$best}")
        compopt -o filenames 2>/dev/null
        ;;
    PID)
        COMPREPLY=($(compgen -P "$best" -W "$(cd /proc && printf '%s ' [0-9]*)" -- "${cur#"$best"}"))
        ;;
    NAME | KEY)
        COMPREPLY=($(compgen -W "$(ipckit ls --urls 2>/dev/null)" -- "$cur"))
        ;;
    "")
        COMPREPLY=($(compgen -W "${prefixes[*]}" -- "$cur"))
        compopt -o nospace 2>/dev/null
        ;;
    esac
}

# The option keys of the scheme of the first address on the command line, as KEY=.
_ipckit_option_keys()
{
    local w scheme=""
    for w in "${words[@]:2}"; do
        [[ $w == [a-z]*:* ]] && scheme=${w%%:*} && break
    done
    [[ -n $scheme ]] || return
    COMPREPLY=($(compgen -S = -W "$(ipckit info --options "$scheme" 2>/dev/null)" -- "$cur"))
    compopt -o nospace 2>/dev/null
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

    local commands="send recv relay chat ls rm info tour bench serve"
    if ((cword == 1)); then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi

    local cmd=${words[1]} opts=""
    # Values the message commands share: option keys, and the output formats of recv and chat.
    case $cmd in
    send | recv | chat)
        case $prev in
        -o | --option)
            _ipckit_option_keys
            return
            ;;
        -f | --format)
            [[ $cmd == send ]] || { COMPREPLY=($(compgen -W "text hex json raw framed" -- "$cur")); return; }
            ;;
        esac
        ;;
    esac
    case $cmd in
    send)
        opts="--stdin --count --interval --timeout --prio --type --option --listen --dial --help"
        case $prev in
        -s | --stdin)
            COMPREPLY=($(compgen -W "lines whole framed" -- "$cur"))
            return
            ;;
        -c | --count | -i | --interval | -t | --timeout | -p | --prio | -T | --type)
            return
            ;;
        esac
        ;;
    recv)
        opts="--count --timeout --format --option --listen --dial --help"
        case $prev in
        -n | --count | -t | --timeout)
            return
            ;;
        esac
        ;;
    chat)
        opts="--stdin --format --linger --option --listen --dial --help"
        case $prev in
        -s | --stdin)
            COMPREPLY=($(compgen -W "lines framed whole" -- "$cur"))
            return
            ;;
        -w | --linger)
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
        [[ $cmd == rm ]] && opts="--stale --force --all-users --dry-run --dir --kind --help"
        case $prev in
        -D | --dir)
            COMPREPLY=($(compgen -d -- "$cur"))
            return
            ;;
        -k | --kind)
            local done=""
            [[ $cur == *,* ]] && done=${cur%,*},
            COMPREPLY=($(compgen -P "$done" -W "$(ipckit info --kinds 2>/dev/null)" -- "${cur##*,}"))
            return
            ;;
        esac
        if [[ $cmd == rm && $cur != -* ]]; then
            COMPREPLY=($(compgen -W "$(ipckit ls --urls 2>/dev/null)" -- "$cur"))
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
        opts="--schemes --options --kinds --status --help"
        if [[ $prev == --options ]]; then
            COMPREPLY=($(compgen -W "$(ipckit info --schemes 2>/dev/null | sed 's/:.*//' | sort -u)" -- "$cur"))
            return
        fi
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
        opts="--proto --exec --workers --config --max-conn --max-frame --idle-timeout --read-timeout --exec-timeout --exec-framing --shutdown-timeout --kill-timeout --log --pid-file --status --help"
        case $prev in
        -p | --proto)
            COMPREPLY=($(compgen -W "echo raw" -- "$cur"))
            return
            ;;
        --exec-framing)
            COMPREPLY=($(compgen -W "len line" -- "$cur"))
            return
            ;;
        --log | --pid-file | -c | --config)
            COMPREPLY=($(compgen -f -- "$cur"))
            return
            ;;
        -e | --exec)
            COMPREPLY=($(compgen -c -- "$cur"))
            return
            ;;
        --status)
            _ipckit_url "$cur"
            __ltrim_colon_completions "$cur" 2>/dev/null
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
