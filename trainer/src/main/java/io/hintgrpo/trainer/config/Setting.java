package io.hintgrpo.trainer.config;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * One setting of a settings record: its default, written as a config file would write it, and
 * what it means. The config key is the component's name in snake_case, the flag the same in
 * kebab-case ({@link Settings}).
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.RECORD_COMPONENT)
public @interface Setting {
    /** The default value ("8", "1e-4", "token-mean", "false"). */
    String value();

    /** What the setting does, one sentence; docs/config.md and --help show it. */
    String doc();
}
